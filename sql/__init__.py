"""The SQL that is the system, read from the files beside this module.

- ``definitions/*.sql``: the current definition of every function, view,
  trigger, comment and grant, each object once; re-applied by every upgrade.
- ``migrations/<revision>/*.sql``: run-once changes (tables, columns, data,
  drops), frozen by hash once released (frozen.txt).
- ``install/*.sql``: what a fresh install runs besides the definitions
  (db/install.py): head's tables (generated), dblink, settings, the seed.
- ``releases/<revision>.json``: the catalogue each release installs,
  generated (``vectorkeep schema record``); downgrades and
  ``vectorkeep schema check`` read it.
- ``queries.sql``: every statement the Python side sends, by name.

Python never builds SQL by concatenation: migrations apply these files whole,
and statements are looked up by name.
"""

import functools
import re
from importlib.resources import files

_QUERY_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_SECTION = re.compile(r"^-- ==.*\n", re.MULTILINE)  # a heading that groups statements by caller


def read(relative_path: str) -> str:
    """The text of one file under sql/, e.g. ``definitions/30_search.sql``."""
    return files(__name__).joinpath(relative_path).read_text(encoding="utf-8")


def definition_files() -> list[str]:
    """The current definitions, in the order they apply."""
    folder = files(__name__).joinpath("definitions")
    return sorted(f"definitions/{p.name}" for p in folder.iterdir() if p.name.endswith(".sql"))


def install_files() -> list[str]:
    """A fresh install's own files (install/*.sql: head's tables, dblink, settings, the seed), in order."""
    folder = files(__name__).joinpath("install")
    return sorted(f"install/{p.name}" for p in folder.iterdir() if p.name.endswith(".sql"))


def release_file(revision: str) -> str:
    return f"releases/{revision}.json"


def release_revisions() -> list[str]:
    """Revisions whose catalogue is recorded, in order."""
    folder = files(__name__).joinpath("releases")
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def migration_dirs() -> list[str]:
    """The run-once folders (migrations/0001_core, ...), in order."""
    folder = files(__name__).joinpath("migrations")
    return sorted(f"migrations/{p.name}" for p in folder.iterdir() if re.fullmatch(r"\d{4}_\w+", p.name))


def parse_queries(text: str) -> dict[str, str]:
    """Named statements of a queries file: a ``-- name: x`` line, comments, then the statement."""
    parts = _QUERY_HEADER.split(_SECTION.sub("", text))
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


@functools.cache
def queries() -> dict[str, str]:
    """Named queries of queries.sql."""
    return parse_queries(read("queries.sql"))


def released_queries_file(revision: str) -> str:
    """The statements the Python side sent when `revision` was released (``vectorkeep schema release``):
    the next release's workers may change theirs, these must keep working against head."""
    return f"releases/{revision}.queries.sql"


def query(name: str) -> str:
    return queries()[name]
