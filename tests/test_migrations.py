"""alembic: upgrade, downgrade to nothing, upgrade again."""

import subprocess
import sys
from pathlib import Path

import psycopg

from helpers import cli, one
from vectorkeep.db import catalogue, migrate

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


def catalogue_of(url: str) -> catalogue.Catalogue:
    with psycopg.connect(url) as conn:
        return catalogue.read(conn)


def test_every_revision_installs_and_downgrades_to_the_catalogue_recorded_for_its_release(empty_db_url: str) -> None:
    """Upgrading one revision at a time from nothing gives, at each revision, exactly the catalogue
    recorded in sql/releases/ for it (functions with their properties, views, triggers, tables,
    indexes, comments, grants): a revision's upgrade does the same whatever the target, so this is a
    fresh install of each revision (for the releases before 0009, recorded from installs by the release
    itself). Then each downgrade, one revision at a time from head, gives exactly the catalogue of the
    revision below, and upgrading again gives head's. Linear in the number of revisions. For the head
    revision, regenerate its file with `vectorkeep schema record` once the revision is ready."""
    revisions = migrate.revisions()
    assert revisions[-1] == migrate.head_revision()
    for revision in revisions:
        migrate.upgrade(empty_db_url, revision)
        drift = catalogue.diff(migrate.release(revision).objects, catalogue_of(empty_db_url))
        assert drift.lines() == [], f"upgrade to {revision}"
    for revision in reversed(revisions[:-1]):
        migrate.downgrade(empty_db_url, revision)
        drift = catalogue.diff(migrate.release(revision).objects, catalogue_of(empty_db_url))
        assert drift.lines() == [], f"downgrade to {revision}"
    migrate.upgrade(empty_db_url)
    assert catalogue.diff(migrate.release(revisions[-1]).objects, catalogue_of(empty_db_url)).lines() == []
