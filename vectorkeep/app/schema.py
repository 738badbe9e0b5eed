"""What a DBA asks of the schema: the current definition of an object, and
whether an installed database has exactly the objects its revision should;
and, for developers, recording a release's catalogue."""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.sql import SQL, Identifier

from vectorkeep import sql
from vectorkeep.db import catalogue, settings
from vectorkeep.db.catalogue import Drift, Release
from vectorkeep.db.connect import connect

_CREATE = re.compile(r"^CREATE OR REPLACE (?:FUNCTION|VIEW|TRIGGER) (\S+?)[\s(]", re.MULTILINE)


@dataclass(frozen=True)
class Definition:
    path: str
    line: int
    text: str


def _blocks(path: str) -> list[tuple[str, int, str]]:
    """(object name, line, text) of each CREATE in a definitions file, with the comment above it
    and the COMMENT ON after it."""
    lines = sql.read(path).splitlines()
    out = []
    for i, line in enumerate(lines):
        match = _CREATE.match(line + " ")
        if not match:
            continue
        start = i
        while start > 0 and lines[start - 1].startswith("--") and not lines[start - 1].startswith("-- Current"):
            start -= 1
        dollar = next((j for j in range(i, min(i + 12, len(lines))) if re.search(r"AS \$\$$|\$\$$", lines[j])), None)
        end = i
        if dollar is not None:
            end = next(j for j in range(dollar + 1, len(lines)) if lines[j].startswith("$$;"))
        else:
            while not lines[end].rstrip().endswith(";"):
                end += 1
        end += 1
        while end < len(lines) and lines[end].startswith("COMMENT ON"):
            while not lines[end].rstrip().endswith(";"):
                end += 1
            end += 1
        out.append((match.group(1), start + 1, "\n".join(lines[start:end])))
    return out


def show(name: str) -> list[Definition]:
    """The current definitions of an object (``vk.search``, ``search``, ``vk.status``), as
    written in sql/definitions/; empty when none is."""
    wanted = name if name.startswith("vk.") else f"vk.{name}"
    return [
        Definition(f"sql/{path}", line, text)
        for path in sql.definition_files()
        for found, line, text in _blocks(path)
        if found == wanted
    ]


@dataclass(frozen=True)
class Check:
    revision: str | None
    head: str | None
    drift: Drift


def check(url: str) -> Check:
    """The database's catalogue against the one recorded for its revision (sql/releases/), and its
    collections' own objects (indexes, trigger functions, expression functions, triggers) against
    those its collections call for (a backfill's deferred indexes are not missing)."""
    from vectorkeep.db import migrate  # alembic: imported when a check runs, not with the command line

    revision, head = migrate.current_revision(url), migrate.head_revision()
    if revision is None:
        raise LookupError("vectorkeep is not installed in this database: run `vectorkeep migrate`")
    recorded = migrate.release(revision).objects
    with connect(url, autocommit=True) as conn:
        return Check(revision, head, catalogue.drift(conn, recorded))


def record_release(server_url: str) -> Path:
    """Install the head revision into a scratch database of that server and write its catalogue
    to sql/releases/<head>.json (in the checkout this package runs from)."""
    from vectorkeep.db import migrate

    head = migrate.head_revision()
    assert head is not None
    scratch = f"vk_release_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(SQL("CREATE DATABASE {}").format(Identifier(scratch)))
    try:
        url = settings.url_with_database(server_url, scratch)
        migrate.upgrade(url)
        with connect(url, autocommit=True) as conn:
            text = Release.of(conn, head).dumps()
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(Identifier(scratch)))
    path = Path(sql.__file__).parent / sql.release_file(head)
    path.write_text(text, encoding="utf-8")
    return path
