"""What schema vk holds, read from PostgreSQL's catalogue, as plain data.

One reader serves three needs: the tests compare a fresh install with an
upgraded one, `vectorkeep schema check` compares a live database with the
catalogue a release expects (sql/releases/<revision>.json), and a downgrade
restores a release's definitions from that same file.

Objects are keyed ``"function vk.search(text, vector, integer, text, jsonb)"``,
``"view vk.status"``, ``"table vk.models"``, … Per-collection objects that
vk.attach writes (a collection's INSERT trigger function, its HNSW indexes)
are data, not schema, and are left out.
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


def read(conn: psycopg.Connection) -> Catalogue:
    """Every object of schema vk with the properties that matter to a DBA."""
    schema = vector_schema(conn)
    out: Catalogue = {}
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
