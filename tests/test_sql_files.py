"""The sql/ files: one current definition per object, properties on the CREATE,
re-applying the definitions is a no-op, every named query plans."""

import re
from collections import Counter
from pathlib import Path

import psycopg

from helpers import is_do_block, prepare
from vectorkeep import sql
from vectorkeep.db import catalogue
from vectorkeep.db.definitions import fill_vector_schema

SQL = Path(__file__).resolve().parent.parent / "sql"
CREATES = re.compile(r"^CREATE OR REPLACE (FUNCTION|VIEW|TRIGGER) ([\w.]+)", re.MULTILINE)
# A function's name and its parameters up to the first closing parenthesis at depth 0.
FUNCTIONS = re.compile(r"^CREATE OR REPLACE FUNCTION ([\w.]+)\(((?:[^()]|\([^()]*\))*)\)", re.MULTILINE)


def _argument_types(parameters: str) -> str:
    """'collection text, query vector, k integer DEFAULT 10' -> 'text, vector, integer' (OUT ones left out)."""
    types = []
    for parameter in filter(None, (p.strip() for p in re.split(r",(?![^()]*\))", parameters))):
        words = re.sub(r"\s+DEFAULT\s.*$", "", parameter, flags=re.IGNORECASE | re.DOTALL).split()
        if words[0].upper() == "OUT":
            continue
        types.append(" ".join(words[1:]) if len(words) > 1 else words[0])
    return ", ".join(types)


def test_each_object_is_defined_in_exactly_one_place() -> None:
    found: Counter[str] = Counter()
    for path in sql.definition_files():
        text = sql.read(path)
        for kind, name in CREATES.findall(text):
            if kind != "FUNCTION":
                found[f"{kind.lower()} {name}"] += 1
        # Functions by name and argument types: vk.search(text, vector, …) and vk.search(text, text, …) are two.
        for name, parameters in FUNCTIONS.findall(text):
            found[f"function {name}({_argument_types(parameters)})"] += 1
    assert [name for name, n in found.items() if n > 1] == []
    # Run-once migrations create tables, never functions or views.
    for path in SQL.glob("migrations/*/*.sql"):
        assert not CREATES.search(path.read_text()), f"{path} defines a function or view: move it to definitions/"


def test_one_statement_queues_a_row_again() -> None:
    """What "queued again" means (attempts, error, dead, priority) is vk._queue_pairs's statement: five
    copies of it drifted apart before (vk.set_chunking's kept a backfill's priority). The INSERT trigger
    writes it out, since a call there costs single-row INSERTs 12% (bench/triggers.py): the same text."""
    upsert = re.compile(r"ON CONFLICT \(collection_id, pk, model_id\) DO UPDATE\s+SET [^;]*;")
    found = {path: upsert.findall(sql.read(path)) for path in sql.definition_files()}
    clauses = [" ".join(clause.split()) for copies in found.values() for clause in copies]
    assert {path for path, copies in found.items() if copies} == {"definitions/12_queue_triggers.sql"}
    assert len(clauses) == 2 and clauses[0] == clauses[1]


def test_properties_are_stated_on_each_create() -> None:
    for path in sql.definition_files():
        # (Dynamic ALTER FUNCTION ... OWNER of a collection's own functions is data, not a property.)
        assert not re.search(r"^\s*ALTER FUNCTION", sql.read(path), re.MULTILINE), (
            f"{path}: state properties on the CREATE"
        )


def test_definitions_reapply_as_no_ops(conn: psycopg.Connection) -> None:
    before = catalogue.read(conn)
    schema = catalogue.vector_schema(conn)
    for path in sql.definition_files():
        conn.execute(fill_vector_schema(sql.read(path), schema).encode())
    assert catalogue.diff(before, catalogue.read(conn)).lines() == []
    # Still working after the re-apply.
    conn.execute("INSERT INTO vk.documents (body) VALUES ('still queued')")
    assert conn.execute("SELECT count(*) FROM vk.queue").fetchone() == (1,)


def test_every_named_query_is_valid_sql(conn: psycopg.Connection) -> None:
    """Each statement of queries.sql parses and plans against the schema (PREPARE checks both); a DO block,
    which cannot be prepared, runs (the only one does nothing without Citus)."""
    for name, text in sql.queries().items():
        if name.startswith(("listen", "set_search_path")):
            continue
        if is_do_block(text):
            conn.execute(text.encode())
            continue
        prepare(conn, f"q_{name}", text)
        conn.execute(f"DEALLOCATE q_{name}")
