"""`attach`, `chunking`, `status`: watched tables and how far their embedding is."""

import argparse
import json

from vectorkeep.app import collections, status
from vectorkeep.cli.output import emit
from vectorkeep.cli.parsing import Commands, url


def _chunking(args: argparse.Namespace) -> collections.Chunking:
    return collections.Chunking(args.chunking, args.chunk_size, args.chunk_overlap)


def cmd_attach(args: argparse.Namespace) -> int:
    name = collections.attach(
        url(args),
        args.table,
        pk=args.pk,
        text=args.text,
        model=args.model,
        name=args.name,
        chunking=_chunking(args),
        row_security=args.row_security,
        metadata=args.metadata,
    )
    print(f"attached {args.table} as collection {name!r} (chunking {args.chunking}); existing rows are queued")
    return 0


def cmd_chunking(args: argparse.Namespace) -> int:
    result = collections.set_chunking(url(args), args.collection, _chunking(args))
    if args.json:
        emit([result], as_json=True)
    else:
        print(f"collection {result['collection']!r} now chunks with {json.dumps(result['chunking'])}; rows are queued")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    emit(status.status(url(args)), as_json=args.json)
    return 0


def _chunking_options(p: argparse.ArgumentParser, *, positional: bool = False) -> None:
    help_ = "how to cut long text: none (one vector a row), tokens, sentences or markdown"
    if positional:
        p.add_argument("chunking", choices=collections.METHODS, help=help_)
    else:
        p.add_argument("--chunking", choices=collections.METHODS, default="none", help=help_ + " (default none)")
    p.add_argument("--chunk-size", type=int, help="tokens a chunk (default: the encoder's window)")
    p.add_argument("--chunk-overlap", type=int, default=0, help="tokens shared by neighbouring chunks (tokens only)")


def register(commands: Commands) -> None:
    p = commands.add(
        "attach", cmd_attach, "Watch a table: queue its rows for embedding on INSERT/UPDATE.", json_flag=False
    )
    p.add_argument("table", help="table name, optionally schema-qualified")
    p.add_argument("--pk", required=True, help="key column (primary key or unique)")
    p.add_argument("--text", required=True, help="SQL expression for the text, e.g. \"title || ' ' || body\"")
    p.add_argument("--model", default="minilm", help="model name or name@version (default minilm)")
    p.add_argument("--name", help="collection name (default: the table name)")
    p.add_argument(
        "--row-security",
        choices=["refuse", "copy"],
        default="refuse",
        help="a table with row-level security: refuse it (default), or copy its text anyway (see README)",
    )
    p.add_argument(
        "--metadata",
        help="SQL expression over the table's columns returning a jsonb object that searches filter on, "
        "e.g. \"jsonb_build_object('tenant', tenant)\"",
    )
    _chunking_options(p)

    p = commands.add("chunking", cmd_chunking, "Set how a collection's rows are cut before embedding; re-embeds them.")
    p.add_argument("collection")
    _chunking_options(p, positional=True)

    commands.add(
        "status",
        cmd_status,
        "Rows, embedded, chunks, pending, failed, dead, empty and stale per collection and model.",
    )
