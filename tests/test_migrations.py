"""alembic: upgrade, downgrade to nothing, upgrade again."""

import subprocess
import sys
from pathlib import Path

import psycopg

from helpers import cli, one
from vectorkeep.db import migrate

ROOT = Path(__file__).resolve().parent.parent


def installed(conn: psycopg.Connection) -> dict[str, object]:
    return {
        "schema": one(conn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'vk'"),
        "extension": one(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'vector'"),
        "user_triggers": one(
            conn,
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass('public.items') AND NOT tgisinternal",
        ),
    }


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO items VALUES (1, 'kept through it all')")
        assert installed(conn) == {"schema": 0, "extension": 0, "user_triggers": 0}

        migrate.upgrade(empty_db_url)
        assert migrate.current_revision(empty_db_url) == migrate.head_revision()
        conn.execute("SELECT vk.attach('items', 'id', 'body')")
        assert installed(conn) == {"schema": 1, "extension": 1, "user_triggers": 4}
        assert one(conn, "SELECT count(*) FROM vk.queue") == 1

        migrate.downgrade(empty_db_url, "base")
        assert migrate.current_revision(empty_db_url) is None
        assert installed(conn) == {"schema": 0, "extension": 0, "user_triggers": 0}
        # The application's table and rows are untouched, and writes still work.
        conn.execute("INSERT INTO items VALUES (2, 'after downgrade')")
        assert one(conn, "SELECT count(*) FROM items") == 2

        migrate.upgrade(empty_db_url)
        assert installed(conn)["schema"] == 1
        assert one(conn, "SELECT name FROM vk.collections") == "documents"
        assert one(conn, "SELECT vk.model_label(m) FROM vk.models m") == "minilm@1"
        # Upgrading again is a no-op.
        migrate.upgrade(empty_db_url)
        assert one(conn, "SELECT count(*) FROM vk.models") == 1


def test_downgrade_keeps_a_pgvector_it_did_not_create(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE TABLE own_vectors (id int PRIMARY KEY, v vector(3))")
        migrate.upgrade(empty_db_url)
        migrate.downgrade(empty_db_url, "base")
        assert installed(conn)["extension"] == 1
        assert installed(conn)["schema"] == 0


def test_alembic_command_line_from_the_checkout(empty_db_url: str) -> None:
    def alembic(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "-x", f"url={empty_db_url}", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout + done.stderr

    alembic("upgrade", "head")
    assert f"{migrate.head_revision()} (head)" in alembic("current")
    alembic("downgrade", "base")
    assert "(head)" not in alembic("current")


def test_vectorkeep_migrate_command(empty_db_url: str) -> None:
    done = cli(empty_db_url, "migrate")
    assert done.returncode == 0, done.stderr
    assert f"revision {migrate.head_revision()}" in done.stdout
    done = cli(empty_db_url, "migrate", "--downgrade", "base")
    assert done.returncode == 0, done.stderr
    assert "revision None" in done.stdout


SCHEMA = """
SELECT md5(coalesce((SELECT string_agg(p.oid::regprocedure::text || pg_get_functiondef(p.oid), '|'
                                       ORDER BY p.oid::regprocedure::text)
                     FROM pg_proc p WHERE p.pronamespace = 'vk'::regnamespace), '')
        || coalesce((SELECT string_agg(format('%s.%s %s %s %s', c.table_name, c.column_name, c.data_type,
                                              c.is_nullable, c.column_default), '|'
                                       ORDER BY c.table_name, c.ordinal_position)
                     FROM information_schema.columns c WHERE c.table_schema = 'vk'), '')
        || coalesce((SELECT string_agg(indexdef, '|' ORDER BY indexdef) FROM pg_indexes
                     WHERE schemaname = 'vk'), '')
        || coalesce((SELECT string_agg(pg_get_triggerdef(t.oid), '|' ORDER BY pg_get_triggerdef(t.oid))
                     FROM pg_trigger t
                     WHERE NOT t.tgisinternal), ''))
"""


def schema_of(url: str) -> str:
    with psycopg.connect(url) as conn:
        return str(one(conn, SCHEMA))


def test_every_revision_round_trips_to_the_same_schema(server_url: str, empty_db_url: str) -> None:
    """Each downgrade, one revision at a time from head, gives exactly the schema a fresh install of
    the revision below has (functions, columns, indexes, triggers), and upgrading again gives head's."""
    from conftest import drop_database, fresh_database

    from vectorkeep import sql

    revisions = sql.revision_dirs()
    assert revisions[-1] == migrate.head_revision()
    fresh: dict[str, str] = {}
    for revision in revisions:
        name, url = fresh_database(server_url, None)
        try:
            migrate.upgrade(url, revision)
            fresh[revision] = schema_of(url)
        finally:
            drop_database(server_url, name)
    assert len(set(fresh.values())) == len(revisions)  # every revision changes the schema

    migrate.upgrade(empty_db_url)
    assert schema_of(empty_db_url) == fresh[revisions[-1]]
    for revision in reversed(revisions[:-1]):
        migrate.downgrade(empty_db_url, revision)
        assert schema_of(empty_db_url) == fresh[revision], f"downgrade to {revision}"
    migrate.upgrade(empty_db_url)
    assert schema_of(empty_db_url) == fresh[revisions[-1]]
