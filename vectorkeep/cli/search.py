"""`search`, `similar`: the nearest rows to a text, or to a stored row."""

import argparse
import json
from typing import Any

from vectorkeep.app import search
from vectorkeep.cli.output import emit
from vectorkeep.cli.parsing import Commands, url


def _filter(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.filter is None:
        return None
    value = json.loads(args.filter)
    if not isinstance(value, dict):
        raise SystemExit("--filter takes a JSON object, e.g. --filter '{\"tenant\": 2}'")
    return value


def cmd_search(args: argparse.Namespace) -> int:
    if args.hybrid:
        rows = search.hybrid_search(
            url(args),
            args.collection,
            args.text,
            k=args.k,
            model=args.model,
            filter=_filter(args),
            keyword_weight=args.keyword_weight,
            vector_weight=args.vector_weight,
            fusion=args.fusion,
        )
    else:
        rows = search.search(
            url(args), args.collection, args.text, k=args.k, model=args.model, chunks=args.chunks, filter=_filter(args)
        )
    emit(rows, as_json=args.json)
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    rows = search.similar(url(args), args.collection, args.pk, k=args.k, model=args.model, filter=_filter(args))
    emit(rows, as_json=args.json)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--collection", default="documents")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--model", help="name or name@version (default: the collection's)")
    p.add_argument("--filter", help="only rows whose metadata contains this JSON object, e.g. '{\"tenant\": 2}'")


def register(commands: Commands) -> None:
    p = commands.add(
        "search",
        cmd_search,
        "The nearest rows to a text (vk.search; a running worker encodes it, else it is encoded here).",
    )
    p.add_argument("text")
    p.add_argument("--chunks", action="store_true", help="show the nearest chunks and their offsets (vk.search_chunks)")
    p.add_argument("--hybrid", action="store_true", help="BM25 keyword and vector lists fused (vk.hybrid_search)")
    p.add_argument("--keyword-weight", type=float, help="with --hybrid (default: the collection's setting)")
    p.add_argument("--vector-weight", type=float, help="with --hybrid (default: the collection's setting)")
    p.add_argument("--fusion", choices=("convex", "rrf"), help="with --hybrid (default: the collection's setting)")
    _common(p)

    p = commands.add("similar", cmd_similar, "Rows most similar to a stored row (vk.similar).")
    p.add_argument("pk")
    _common(p)
