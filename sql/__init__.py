"""The SQL that is the system, read from the .sql files beside this module.

Python never builds SQL by concatenation: migrations apply these files whole,
and the worker's statements are looked up by name in queries.sql.
"""

import functools
import re
from importlib.resources import files

_QUERY_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def read(relative_path: str) -> str:
    """The text of one file under sql/, e.g. ``0001_core/down.sql``."""
    return files(__name__).joinpath(relative_path).read_text(encoding="utf-8")


def migration_files(revision_dir: str) -> list[str]:
    """The upgrade files of one revision directory, in the order they apply."""
    folder = files(__name__).joinpath(revision_dir)
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [f"{revision_dir}/{n}" for n in names if n != "down.sql"]


@functools.cache
def queries() -> dict[str, str]:
    """Named queries of queries.sql: a ``-- name: x`` line, comments, then the statement."""
    parts = _QUERY_HEADER.split(read("queries.sql"))
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def query(name: str) -> str:
    return queries()[name]


IDEMPOTENT_MARK = "-- idempotent:"


def is_idempotent(relative_path: str) -> bool:
    """Files marked idempotent (CREATE OR REPLACE only) can be applied again;
    the others (tables, seeds) run once, in their own revision."""
    return IDEMPOTENT_MARK in read(relative_path).split("\n\n", 1)[0]


SUPERSEDES = re.compile(r"^-- supersedes: (\S+)", re.MULTILINE)


def reapplicable(through: str) -> list[str]:
    """The idempotent files of every revision up to `through`, in order, that a
    database at `through` can take again: a later file of that range may
    declare (``-- supersedes: path``) that it changed an earlier file's objects
    in a way the earlier file cannot redo (a view that gained columns)."""
    files = [f for rev in revision_dirs() if rev <= through for f in migration_files(rev) if is_idempotent(f)]
    superseded = {m for f in files for m in SUPERSEDES.findall(read(f).split("\n\n", 1)[0])}
    return [f for f in files if f not in superseded]


def revision_dirs() -> list[str]:
    """The revision folders (0001_core, 0002_...), in order."""
    return sorted(p.name for p in files(__name__).iterdir() if re.fullmatch(r"\d{4}_\w+", p.name))
