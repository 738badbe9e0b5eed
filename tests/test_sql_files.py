"""The sql/ files: idempotent ones re-apply as no-ops; run-once ones are marked as such."""

import re

import psycopg

from vectorkeep import sql

DEFINITIONS = """
SELECT md5(string_agg(p.proname || pg_get_functiondef(p.oid), '' ORDER BY p.proname, p.oid::regprocedure::text))
FROM pg_proc p WHERE p.pronamespace = 'vk'::regnamespace
"""


def test_idempotent_files_reapply_as_no_ops(conn: psycopg.Connection) -> None:
    files = [f for f in sql.migration_files("0001_core") if sql.is_idempotent(f)]
    assert [f.split("/")[1][:2] for f in files] == ["00", "20", "30", "40", "50", "60"]
    before = conn.execute(DEFINITIONS).fetchone()
    for path in files:
        conn.execute(sql.read(path).encode())
    assert conn.execute(DEFINITIONS).fetchone() == before
    # Still working after the re-apply.
    conn.execute("INSERT INTO vk.documents (body) VALUES ('still queued')")
    assert conn.execute("SELECT count(*) FROM vk.queue").fetchone() == (1,)


def test_run_once_files_are_not_marked_idempotent() -> None:
    run_once = [f for f in sql.migration_files("0001_core") if not sql.is_idempotent(f)]
    assert run_once == ["0001_core/10_tables.sql", "0001_core/90_seed.sql"]


def test_every_named_query_is_valid_sql(conn: psycopg.Connection) -> None:
    """Each statement of queries.sql parses and plans against the schema (PREPARE checks both)."""
    for name, text in sql.queries().items():
        if name == "listen":
            continue
        statement = text.rstrip().rstrip(";")
        # Named placeholders become positional parameters of unknown type.
        names: list[str] = []
        for match in re.finditer(r"%\((\w+)\)s", statement):
            if match.group(1) not in names:
                names.append(match.group(1))
        for i, param in enumerate(names, 1):
            statement = statement.replace(f"%({param})s", f"${i}")
        conn.execute(f"PREPARE q_{name} AS {statement}")
        conn.execute(f"DEALLOCATE q_{name}")
