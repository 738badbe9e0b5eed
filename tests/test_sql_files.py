"""The sql/ files: idempotent ones re-apply as no-ops; run-once ones are marked as such."""

import re

import psycopg

from vectorkeep import sql

DEFINITIONS = """
SELECT md5(string_agg(p.proname || pg_get_functiondef(p.oid), '' ORDER BY p.proname, p.oid::regprocedure::text))
FROM pg_proc p WHERE p.pronamespace = 'vk'::regnamespace
"""


def test_idempotent_files_reapply_as_no_ops(conn: psycopg.Connection) -> None:
    """Every revision's idempotent files, re-applied in order, leave the schema as it was."""
    files = sql.reapplicable(through=sql.revision_dirs()[-1])
    # 0007 made vk.status wider: 0001's view file no longer re-applies, 0007's does.
    assert [f for f in files if f.startswith("0001_core")] == [
        f"0001_core/{n}"
        for n in ("00_extension.sql", "20_models.sql", "30_collections.sql", "40_queue.sql", "50_search.sql")
    ]
    assert "0007_chunks/40_status.sql" in files
    before = conn.execute(DEFINITIONS).fetchone()
    for path in files:
        conn.execute(sql.read(path).encode())
    assert conn.execute(DEFINITIONS).fetchone() == before
    # Still working after the re-apply.
    conn.execute("INSERT INTO vk.documents (body) VALUES ('still queued')")
    assert conn.execute("SELECT count(*) FROM vk.queue").fetchone() == (1,)


def test_run_once_files_are_not_marked_idempotent() -> None:
    run_once = [f for rev in sql.revision_dirs() for f in sql.migration_files(rev) if not sql.is_idempotent(f)]
    assert run_once == [
        "0001_core/10_tables.sql",
        "0001_core/90_seed.sql",
        "0002_versioned/10_tables.sql",
        "0003_recovery/10_tables.sql",
        "0004_reliability/10_tables.sql",
        "0006_fast_queue/05_rename.sql",
        "0006_fast_queue/40_existing.sql",
        "0007_chunks/10_tables.sql",
        "0008_maps_sequences/05_rename.sql",
        "0008_maps_sequences/10_tables.sql",
    ]


def test_every_named_query_is_valid_sql(conn: psycopg.Connection) -> None:
    """Each statement of queries.sql parses and plans against the schema (PREPARE checks both)."""
    for name, text in sql.queries().items():
        if name.startswith("listen"):
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
