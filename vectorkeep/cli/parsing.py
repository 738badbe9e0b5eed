"""What the command groups share to build their parsers and read their arguments."""

import argparse
import json
import re
from collections.abc import Callable
from typing import Any

from vectorkeep.app.database import database_url

Handler = Callable[[argparse.Namespace], int]

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Commands:
    """Adds commands (each with its handler, and --json unless told) to a parser's sub-commands."""

    def __init__(
        self, sub: "argparse._SubParsersAction[argparse.ArgumentParser]", *, json_default: Any = False
    ) -> None:
        self.sub = sub
        self.json_default = json_default

    def add(self, name: str, handler: Handler, help_text: str, *, json_flag: bool = True) -> argparse.ArgumentParser:
        p = self._parser(name, help_text)
        p.set_defaults(func=handler)
        if json_flag:
            p.add_argument("--json", action="store_true", default=self.json_default, help="print JSON for scripts")
        return p

    def group(
        self, name: str, help_text: str, *, default: Handler | None = None
    ) -> tuple[argparse.ArgumentParser, "Commands"]:
        """A command with sub-commands (`models list`); `default` runs when none is given (`models`).

        A group with a default takes that command's --json (and its other options, added by the
        caller) before any sub-command; the sub-commands' own --json then defaults to
        argparse.SUPPRESS, so that it leaves a flag given before them in place.
        """
        p = self._parser(name, help_text) if default is None else self.add(name, default, help_text)
        sub = p.add_subparsers(dest=f"{name}_command", metavar="COMMAND", title="commands", required=default is None)
        return p, Commands(sub, json_default=False if default is None else argparse.SUPPRESS)

    def _parser(self, name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self.sub.add_parser(name, help=help_text, description=help_text)
        return parser


def url(args: argparse.Namespace) -> str:
    """The database URL: --database-url, else $VECTORKEEP_DATABASE_URL, else the embedded server's (once a run)."""
    if getattr(args, "resolved_url", None) is None:
        args.resolved_url = database_url(args.database_url)
    return str(args.resolved_url)


def key_values(pairs: list[str] | None) -> dict[str, Any]:
    """key=value pairs; values are read as JSON when they parse (numbers, lists), else text."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: expected key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def interval(text: str) -> str:
    """'24h', '30m', '7d' (or any PostgreSQL interval) as a PostgreSQL interval."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    return f"{match.group(1)} {_UNITS[match.group(2)]}" if match else text


def worker_options(p: argparse.ArgumentParser) -> None:
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
    p.add_argument(
        "--no-overlap",
        action="store_true",
        help="claim, encode, write and commit one batch at a time (by default a batch is encoded while the "
        "last one is written)",
    )
