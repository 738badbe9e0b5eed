"""What a DBA asks of the schema: the current definition of an object, and
whether an installed database has exactly the objects its revision should;
and, for developers, recording a release's catalogue."""

import hashlib
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.sql import SQL, Identifier

from vectorkeep import sql
from vectorkeep.db import catalogue, install, settings
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
    written in sql/definitions/, or of a table (``vk.embeddings``) as head's catalogue records it;
    empty when there is none."""
    wanted = name if name.startswith("vk.") else f"vk.{name}"
    found = [
        Definition(f"sql/{path}", line, text)
        for path in sql.definition_files()
        for found, line, text in _blocks(path)
        if found == wanted
    ]
    return found or _table(wanted)


def _table(name: str) -> list[Definition]:
    """A table as one CREATE TABLE with its constraints, indexes, row security, policies, triggers,
    comments and grants. Tables are built up by run-once migrations (sql/migrations/), so their
    current definition is the sum that head's recorded catalogue holds, rendered here (a fresh
    install runs the same rendering of every table: sql/install/10_tables.sql)."""
    from vectorkeep.db import migrate  # alembic: imported when a table is shown, not with the command line

    head = migrate.head_revision()
    assert head is not None
    objects = migrate.release(head).objects
    table = objects.get(f"table {name}")
    if table is None:
        return []
    lines = [install.create_table(name, table), *install.own_indexes(objects, name)]
    lines += [
        str(objects[key]["definition"]).replace("CREATE OR REPLACE ", "CREATE ", 1) + ";"
        for key in sorted(objects)
        if key.startswith(("policy ", "trigger ")) and key.endswith(f" ON {name}")
    ]
    if table.get("row_security"):
        lines.append(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;")
    lines += install.comments(name, table)
    granted: dict[str, list[str]] = {}
    for grant in table.get("grants", []):
        role, _, privilege = grant.partition(":")
        granted.setdefault(role, []).append(privilege)
    lines += [f"GRANT {', '.join(privileges)} ON {name} TO {role};" for role, privileges in sorted(granted.items())]
    if name == "vk.embeddings":
        lines.append(
            "-- Each (collection, version) adds embeddings_c<C>_m<M>_hnsw and _fts (sql/definitions/13_indexes.sql)."
        )
    header = f"-- the sum of sql/migrations/ up to {head}: no file holds it whole"
    return [Definition(f"sql/releases/{head}.json", 0, "\n".join([header, *lines]))]


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


_ROLES = ("vk_app", "vk_worker", "vk_admin")
_CONTRACT = re.compile(r"_v\d+$")


def _topics() -> dict[str, tuple[int, str, str]]:
    """Each object name -> (file order, file, the first sentence of the file's header: its topic)."""
    out: dict[str, tuple[int, str, str]] = {}
    for order, path in enumerate(sql.definition_files()):
        header = " ".join(
            line.removeprefix("--").strip()
            for line in itertools.takewhile(lambda x: x.startswith("--"), sql.read(path).splitlines())
        )
        topic = re.split(r"(?<=[A-Za-z)])\.\s", header, maxsplit=1)[0].rstrip(".")
        for name, _, _ in _blocks(path):
            out.setdefault(name.replace('"', ""), (order, Path(path).name, topic))
    return out


def reference(release: Release) -> str:
    """The SQL reference (docs/reference/sql.md) of a release: every public function and view with
    its arguments, result, who may call it, whether it runs as its owner, and its COMMENT, grouped
    by the definitions file it lives in. Written by `vectorkeep schema record`; a test fails when
    the committed page differs."""
    topics = _topics()
    entries: dict[tuple[int, str, str], list[str]] = {}
    for key, props in sorted(release.objects.items()):
        kind, _, name = key.partition(" ")
        if kind not in ("function", "view"):
            continue
        bare = re.sub(r"\(.*$", "", name).replace('"', "")
        short = bare.removeprefix("vk.")
        if short.startswith("_") or not bare.startswith("vk."):
            continue
        where = topics[bare]
        if kind == "view":
            block = [f"### `{bare}` (view)", "", str(props.get("comment") or "").strip(), ""]
        else:
            granted = {g.split(":")[0] for g in props.get("grants", []) if g.endswith(":EXECUTE")}
            who = ", ".join(r.removeprefix("vk_") for r in _ROLES if r in granted) or "the owner only"
            runs = "its owner (SECURITY DEFINER)" if props.get("security") == "definer" else "its caller"
            block = [
                f"### `{bare}({props.get('arguments', '')})`",
                "",
                f"Returns `{props.get('result', '')}`. Callable by: {who}. Runs as {runs}."
                + (" Worker contract: its signature never changes." if _CONTRACT.search(short) else ""),
                "",
                str(props.get("comment") or "").strip(),
                "",
            ]
        entries.setdefault(where, []).append("\n".join(block))
    lines = [
        "# SQL reference",
        "",
        f"Generated from the catalogue of revision `{release.revision}` (`sql/releases/{release.revision}.json`,",
        "the `COMMENT ON` and grants of a fresh install) by `vectorkeep schema record`; a test fails when this",
        "page is stale. In psql, `\\df+ vk.*` shows the same comments; `vectorkeep schema show NAME` prints a",
        "definition. Functions whose names start with `_` are internal and not listed.",
        "",
    ]
    for (_, path, topic), blocks in sorted(entries.items()):
        title, _, about = topic.partition(": ")
        about = f"{about if about.startswith('vk') else about[:1].upper() + about[1:]}. " if about else ""
        lines += [f"## {title}", "", f"{about}`sql/definitions/{path}`", "", *blocks]
    return "\n".join(lines).rstrip() + "\n"


def reference_path() -> Path:
    """docs/reference/sql.md of the checkout this package runs from."""
    return Path(sql.__file__).parent.parent / "docs" / "reference" / "sql.md"


def record_release(server_url: str) -> Path:
    """Install the head revision into a scratch database of that server by replaying every revision,
    and write its catalogue to sql/releases/<head>.json, the SQL reference and a fresh install's
    tables (sql/install/10_tables.sql), in the checkout this package runs from."""
    from vectorkeep.db import migrate

    head = migrate.head_revision()
    assert head is not None
    scratch = f"vk_release_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(SQL("CREATE DATABASE {}").format(Identifier(scratch)))
    try:
        url = settings.url_with_database(server_url, scratch)
        migrate.upgrade(url, replay=True)
        with connect(url, autocommit=True) as conn:
            text = Release.of(conn, head).dumps()
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(Identifier(scratch)))
    path = Path(sql.__file__).parent / sql.release_file(head)
    path.write_text(text, encoding="utf-8")
    tables_path().write_text(install.tables_sql(Release.loads(text)), encoding="utf-8")
    reference_path().parent.mkdir(parents=True, exist_ok=True)
    reference_path().write_text(reference(Release.loads(text)), encoding="utf-8")
    return path


def tables_path() -> Path:
    """sql/install/10_tables.sql: a fresh install's tables, rendered from head's catalogue."""
    return Path(sql.__file__).parent / install.TABLES_FILE


def frozen_path() -> Path:
    return Path(sql.__file__).parent / "frozen.txt"


def frozen_revisions() -> list[str]:
    """The released revisions, in order: those whose catalogue sql/frozen.txt lists."""
    lines = frozen_path().read_text(encoding="utf-8").splitlines()
    paths = [line.split()[1] for line in lines if line.strip() and not line.startswith("#")]
    return sorted({Path(p).stem for p in paths if p.startswith("releases/") and p.endswith(".json")})


def release(server_url: str) -> list[Path]:
    """Release the head revision, in one step: record its catalogue (and the SQL reference) from a fresh
    install on this server, keep the statements the Python side sends today beside it (the next
    release's contract test runs them against its head), and freeze the revision: the sha256 of its
    run-once files, its catalogue and those statements go to sql/frozen.txt, after which they are
    never edited again (tests/test_frozen_sql.py). The files written."""
    from vectorkeep.db import migrate

    head = migrate.head_revision()
    assert head is not None
    if head in frozen_revisions():
        raise ValueError(f"{head} is released already: a change is a new revision (sql/migrations/NNNN_name/)")
    root = Path(sql.__file__).parent
    catalogue_file = record_release(server_url)
    statements = root / sql.released_queries_file(head)
    statements.write_text(sql.read("queries.sql"), encoding="utf-8")
    files = [*sorted((root / "migrations" / head).glob("*.sql")), catalogue_file, statements]
    with frozen_path().open("a", encoding="utf-8") as frozen:
        for path in files:
            frozen.write(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(root)}\n")
    return [catalogue_file, reference_path(), tables_path(), statements, frozen_path()]
