"""What schema vk holds, read from PostgreSQL's catalogue, as plain data.

One reader serves three needs: the tests compare a fresh install with an
upgraded one, `vectorkeep schema check` compares a live database with the
catalogue a release expects (sql/releases/<revision>.json), and a downgrade
restores a release's definitions from that same file.

Objects are keyed ``"function vk.search(text, vector, integer, text, jsonb)"``,
``"view vk.status"``, ``"table vk.models"``, … `read` leaves out most of the
objects vk.attach writes (a collection's INSERT trigger function, its HNSW
indexes, the triggers on its table), but not its keyword indexes: the
releases' catalogues record vk.documents' one.

A live database is checked (`drift`) in two parts: its schema objects against
a release's, and the objects its collections brought with them (the indexes
of each version, HNSW and keyword, the INSERT trigger function, the
expression functions of schema vk_expr, the triggers on the collection's
table) against those its own vk.collections and vk.collection_models call
for, since no release can know a database's collections.
"""

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from vectorkeep.sql import query

# pgvector's schema varies by installation; catalogues name it by this token,
# as PostgreSQL's own extension scripts do.
VECTOR_SCHEMA = "@extschema:vector@"

Catalogue = dict[str, dict[str, Any]]

_SEARCH_PATH = re.compile(r"^( SET search_path TO .*)$", re.MULTILINE)

# Privileges that a release's catalogue may grant and an older server has no such thing as, with the
# server_version_num that brought each: releases are recorded on PostgreSQL 18, whose GRANT ALL on a
# table includes MAINTAIN (new in 17); on an older server the same GRANT ALL gives the rest.
PRIVILEGES_SINCE = {"MAINTAIN": 170000}


# A function in FROM without an alias of the author's: PostgreSQL prints its name again as the alias with
# the function's output columns, "pg_stat_get_activity(pid) pg_stat_get_activity(datid, pid, ...)", and
# those columns are the server's (PostgreSQL 16 added gss_delegation to pg_stat_get_activity).
_NAME = r'(?:[A-Za-z_][\w$]*|"[^"]+")'
_FUNCTION_ALIAS = re.compile(rf"\b({_NAME})(\((?:[^()]|\([^()]*\))*\)) \1\({_NAME}(?:, {_NAME})*\)")


def comparable_definition(text: str) -> str:
    """A printed definition without what differs from one server version to another, to compare: the
    column lists PostgreSQL prints after a function in FROM that the author gave no alias, and that
    alias before its columns (PostgreSQL 15 prints `_status.collection` where 16 and later print
    `collection`, in vk.status)."""
    aliases = {match.group(1) for match in _FUNCTION_ALIAS.finditer(text)}
    text = _FUNCTION_ALIAS.sub(r"\1\2", text)
    for alias in aliases:
        text = re.sub(rf"(?<![\w.$]){re.escape(alias)}\.(?={_NAME})", "", text)
    return text


def _comparable(objects: Catalogue) -> Catalogue:
    return {
        key: {**props, "definition": comparable_definition(props["definition"])}
        if isinstance(props.get("definition"), str)
        else props
        for key, props in objects.items()
    }


class ServerCatalogue(dict[str, dict[str, Any]]):
    """A catalogue read from a live database (read()), knowing the version of the server it came from."""

    server_version: int = 0


def missing_privileges(server_version: int) -> set[str]:
    """The privileges of PRIVILEGES_SINCE that a server of this server_version_num lacks."""
    return {privilege for privilege, since in PRIVILEGES_SINCE.items() if server_version < since}


def grant_privilege(grant: str) -> str:
    """'vk_admin:UPDATE (name)' -> 'UPDATE'."""
    return grant.split(":", 1)[1].partition(" ")[0]


def for_server(objects: Catalogue, server_version: int) -> Catalogue:
    """The catalogue as a server of this server_version_num can have it: without grants of privileges it lacks."""
    lacking = missing_privileges(server_version)
    if not lacking:
        return objects
    out: Catalogue = {}
    for key, props in objects.items():
        if "grants" in props and props["grants"] is not None:
            props = {**props, "grants": [g for g in props["grants"] if grant_privilege(g) not in lacking]}
        out[key] = props
    return out


def vector_schema(conn: psycopg.Connection) -> str:
    row = conn.execute(query("vector_schema")).fetchone()
    if row is None:
        raise RuntimeError("pgvector is not installed in this database")
    return str(row[0])


@contextlib.contextmanager
def names_printed_for(conn: psycopg.Connection, schema: str) -> Iterator[None]:
    """The session's search_path as pg_catalog and pgvector's schema, so that names print
    the same in every session (vk's own names always qualified)."""
    before = conn.execute(query("search_path")).fetchone()
    conn.execute(query("set_search_path"), {"path": f"pg_catalog, {schema}"})
    yield
    # Not on an error: the transaction is failed, and the error is the news.
    conn.execute(query("set_search_path"), {"path": before[0] if before else ""})


def _portable(text: str, schema: str) -> str:
    """The definition with pgvector's schema replaced by the token, in its SET search_path line only."""
    return _SEARCH_PATH.sub(lambda m: m.group(1).replace(f"'{schema}'", f"'{VECTOR_SCHEMA}'"), text)


def read(conn: psycopg.Connection) -> ServerCatalogue:
    """Every object of schema vk with the properties that matter to a DBA."""
    schema = vector_schema(conn)
    out = ServerCatalogue()
    out.server_version = conn.info.server_version
    with names_printed_for(conn, schema):
        rows = conn.execute(query("catalogue")).fetchall()
    for key, props in rows:
        if "definition" in props and props["definition"] is not None:
            props["definition"] = _portable(props["definition"], schema)
        if "search_path" in props and props["search_path"] is not None:
            props["search_path"] = props["search_path"].replace(schema, VECTOR_SCHEMA)
        out[key] = props
    return out


def function_order(conn: psycopg.Connection) -> list[str]:
    """vk's functions so that each comes after those its SQL-standard body depends on."""
    with names_printed_for(conn, vector_schema(conn)):
        rows = conn.execute(query("catalogue_function_dependencies")).fetchall()
    deps: dict[str, set[str]] = {}
    for fn, needs in rows:
        deps.setdefault(fn, set())
        if needs is not None:
            deps[fn].add(needs)
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(deps):
        ready = sorted(f for f in deps if f not in placed and deps[f] <= placed)
        if not ready:
            raise RuntimeError(f"circular function dependencies among {sorted(set(deps) - placed)}")
        order.extend(ready)
        placed.update(ready)
    return order


@dataclass(frozen=True)
class Drift:
    """How a database differs from the catalogue it should have."""

    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.changed)

    def lines(self) -> list[str]:
        out = [f"missing  {k}" for k in self.missing] + [f"extra    {k}" for k in self.extra]
        out += [f"changed  {k}: {', '.join(props)}" for k, props in self.changed.items()]
        return out

    def as_json(self) -> dict[str, Any]:
        return {"missing": self.missing, "extra": self.extra, "changed": self.changed}


def diff(expected: Catalogue, actual: Catalogue) -> Drift:
    """What `actual` lacks, has besides, and has otherwise than `expected`. When `actual` was read from
    a server (read()), privileges that server has no such thing as are not expected of it; definitions
    are compared as comparable_definition() prints them."""
    if isinstance(actual, ServerCatalogue) and actual.server_version:
        expected = for_server(expected, actual.server_version)
    expected, actual = _comparable(expected), _comparable(actual)
    changed = {
        key: sorted(p for p in set(expected[key]) | set(actual[key]) if expected[key].get(p) != actual[key].get(p))
        for key in sorted(set(expected) & set(actual))
        if expected[key] != actual[key]
    }
    return Drift(
        missing=sorted(set(expected) - set(actual)),
        extra=sorted(set(actual) - set(expected)),
        changed=changed,
    )


# Keys of the objects a collection brings with it (as the catalogue queries key them).
_PER_COLLECTION = re.compile(
    r"^(index vk\.embeddings_c\d+_m\d+_(hnsw|fts)"
    r"|function vk\._?on_insert_c\d+\(\)"
    r"|function vk_expr\..*"
    r"|trigger (vk_queue_insert|vk_queue_update|vk_forget_delete|vk_forget_truncate) ON .*)$"
)


def schema_objects(objects: Catalogue) -> Catalogue:
    """The catalogue without the objects of collections (which the collections call for, not a release)."""
    return {key: props for key, props in objects.items() if not _PER_COLLECTION.match(key)}


def collection_objects(conn: psycopg.Connection) -> tuple[Catalogue, Catalogue]:
    """(expected, actual): the objects the database's collections call for, and those it has.

    An index that a backfill's reembed job is still to build, or that a session builds now, is
    in neither: absent or invalid, it is where it should be for now. A schema older than
    revision 0014 cannot say which indexes it expects: nothing is compared there.
    """
    row = conn.execute(query("has_collection_catalogue")).fetchone()
    if not row or not row[0]:
        return {}, {}
    with names_printed_for(conn, vector_schema(conn)):
        wanted = conn.execute(query("catalogue_collection_objects_expected")).fetchall()
        have = conn.execute(query("catalogue_collection_objects")).fetchall()
    settling = {key for key, _, settled in wanted if not settled}
    expected = {key: props for key, props, settled in wanted if settled}
    actual = {key: props for key, props in have if key not in settling}
    return expected, actual


def drift(conn: psycopg.Connection, recorded: Catalogue) -> Drift:
    """How a live database differs from a release's catalogue (`recorded`) and from what its
    collections call for: one Drift over both."""
    expected, actual = collection_objects(conn)
    have = read(conn)
    # Replaced in place: what read() returns says which server it came from, which diff() heeds.
    for key in [k for k in have if _PER_COLLECTION.match(k)]:
        del have[key]
    have.update(actual)
    return diff(schema_objects(recorded) | expected, have)


@dataclass(frozen=True)
class Release:
    """The catalogue a release installs, and the order its functions are created in."""

    revision: str
    objects: Catalogue
    function_order: list[str]

    @classmethod
    def loads(cls, text: str) -> "Release":
        data = json.loads(text)
        return cls(data["revision"], data["objects"], data["function_order"])

    @classmethod
    def of(cls, conn: psycopg.Connection, revision: str) -> "Release":
        return cls(revision, read(conn), function_order(conn))

    def dumps(self) -> str:
        data = {"revision": self.revision, "function_order": self.function_order, "objects": self.objects}
        return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
