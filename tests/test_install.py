"""A fresh install (head's schema in one pass, db/install.py) and the revisions replayed from nothing
give the same database."""

import difflib
import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import drop_database, fresh_database

from vectorkeep import sql
from vectorkeep.db import catalogue, embedded, install, migrate

PG_DUMP = embedded.psql_path().parent / "pg_dump"  # PostgreSQL 18's: it reads servers 15 to 18 alike

_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?[+-]\d\d(:\d\d)?")


def pg_dump(url: str, database: str, *args: str) -> str:
    done = subprocess.run([str(PG_DUMP), "--dbname", url, *args], capture_output=True, text=True, check=True)
    # The database's own name, and pg_dump 18's \restrict key, differ from one dump to the next; so does
    # the column option pg_attver that this machine's PostgreSQL 15.20 (Debian) gives every column.
    text = re.sub(r"^\\(un)?restrict .*$", "", done.stdout, flags=re.MULTILINE)
    text = re.sub(r"^ALTER TABLE ONLY \S+ ALTER COLUMN \S+ SET \(pg_attver=\d+\);\n", "", text, flags=re.MULTILINE)
    return text.replace(database, "<database>") if database else text


def schema_dump(url: str, database: str) -> str:
    """Every object of the database, its settings (ALTER DATABASE ... SET) and owners included."""
    return pg_dump(url, database, "--schema-only", "--create")


def rows_dump(url: str) -> dict[str, list[str]]:
    """Every table's rows (COPY line -> its rows, in order) and every sequence's value, timestamps aside."""
    text = _TIME.sub("<time>", pg_dump(url, "", "--data-only"))
    out: dict[str, list[str]] = {"sequences": sorted(re.findall(r"^SELECT pg_catalog\.setval.*$", text, re.MULTILINE))}
    for header, rows in re.findall(r"^(COPY .*)\n((?:.*\n)*?)\\\.$", text, flags=re.MULTILINE):
        out[header] = sorted(rows.splitlines())  # in the order they lie on disk, which updates change
    return out


def differences(replayed: str, fresh: str) -> list[str]:
    """The lines that differ, as a unified diff (what pytest prints when they do)."""
    return list(difflib.unified_diff(replayed.splitlines(), fresh.splitlines(), "replayed", "fresh", lineterm="", n=2))


@pytest.fixture
def second_empty_db(server_url: str) -> Iterator[tuple[str, str]]:
    name, url = fresh_database(server_url, None)
    yield name, url
    drop_database(server_url, name)


def database_name(url: str) -> str:
    with psycopg.connect(url) as conn:
        return str(conn.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]


def test_the_committed_tables_file_is_heads_catalogue_rendered() -> None:
    head = migrate.head_revision()
    assert head is not None
    assert sql.read(install.TABLES_FILE) == install.tables_sql(migrate.release(head)), (
        f"sql/{install.TABLES_FILE} is stale: run `vectorkeep schema record` (it writes the file from head's catalogue)"
    )


def test_a_fresh_install_is_the_revisions_replayed(
    empty_db_url: str, second_empty_db: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Upgrading an empty database to head runs sql/install/ and head's definitions once, and gives what
    replaying every revision gives: the same pg_dump of the schema (with the database's settings, the
    extensions, owners and grants), the same rows, and head's recorded catalogue."""
    fresh, (replayed_name, replayed) = empty_db_url, second_empty_db
    with caplog.at_level(logging.INFO, logger="alembic.runtime.migration"):
        migrate.upgrade(fresh)
    # One pass: no revision ran, and the database is at head.
    assert not [r for r in caplog.records if r.getMessage().startswith("Running upgrade")]
    assert migrate.current_revision(fresh) == migrate.head_revision()
    with caplog.at_level(logging.INFO, logger="alembic.runtime.migration"):
        migrate.upgrade(replayed, replay=True)
    assert len([r for r in caplog.records if r.getMessage().startswith("Running upgrade")]) == len(migrate.revisions())

    fresh_name = database_name(fresh)
    assert differences(schema_dump(replayed, replayed_name), schema_dump(fresh, fresh_name)) == []
    assert rows_dump(fresh) == rows_dump(replayed)
    with psycopg.connect(fresh) as conn:
        have = catalogue.read(conn)
    head = migrate.head_revision()
    assert head is not None
    assert catalogue.diff(migrate.release(head).objects, have).lines() == []


def test_the_install_files_are_packaged() -> None:
    """pyproject.toml's package data names sql/install/ (a wheel without it installs nothing)."""
    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert '"install/*.sql"' in text
    assert sql.install_files() == [
        install.TABLES_FILE,
        "install/15_types.sql",
        "install/20_dblink.sql",
        "install/30_database_settings.sql",
        install.SEED_FILE,
    ]
