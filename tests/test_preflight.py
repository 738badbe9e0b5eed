"""`vectorkeep migrate --check` and `vectorkeep doctor`: what migrating needs of the server and of the role that
will migrate, checked as that role with real roles on the real server; and `vectorkeep migrate` stopping before it
changes anything when a check fails.

Roles and databases are made here by the superuser and dropped at the end. Every role has a password, so that the
tests run on a server that asks for one too (the server lanes: .ci/lane-lib.sh).
"""

import itertools
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from helpers import cli, one
from vectorkeep.db import migrate
from vectorkeep.db.settings import url_with_database

_names = itertools.count()


@dataclass(frozen=True)
class Role:
    name: str
    password: str
    server_url: str

    def url(self, database: str) -> str:
        parts = urlsplit(url_with_database(self.server_url, database))
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{quote(self.name)}:{quote(self.password, safe='')}@{host}"))


@dataclass
class Scratch:
    """Roles and databases of one test, made by the superuser."""

    server_url: str
    roles: list[Role] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)

    def role(self, attributes: str = "") -> Role:
        role = Role(f"t_pre_{os.getpid()}_{next(_names)}", secrets.token_urlsafe(12), self.server_url)
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                    sql.Identifier(role.name), sql.SQL(attributes), sql.Literal(role.password)
                )
            )
        self.roles.append(role)
        return role

    def database(self, owner: Role | None = None) -> str:
        name = f"vk_pre_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {}{}").format(
                    sql.Identifier(name),
                    sql.SQL(" OWNER {}").format(sql.Identifier(owner.name)) if owner else sql.SQL(""),
                )
            )
        self.databases.append(name)
        return name

    def admin(self, database: str) -> psycopg.Connection:
        """The superuser, in a database."""
        return psycopg.connect(url_with_database(self.server_url, database), autocommit=True)


@pytest.fixture
def scratch(server_url: str) -> Iterator[Scratch]:
    made = Scratch(server_url)
    yield made
    with psycopg.connect(server_url, autocommit=True) as admin:
        for name in made.databases:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        for role in made.roles:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role.name)))


def report(url: str, *args: str) -> tuple[int, dict[str, Any]]:
    """`vectorkeep doctor --json` as the URL's role: its exit status and its report."""
    done = cli(url, "doctor", "--json", *args)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def checks(got: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in got["checks"]}


def failed(got: dict[str, Any]) -> list[str]:
    return [c["name"] for c in got["checks"] if c["status"] == "fail"]


def installed(url: str) -> tuple[bool, bool]:
    """Whether schema vk and alembic_version exist: what a migration would have left."""
    with psycopg.connect(url) as conn:
        return (
            one(conn, "SELECT to_regnamespace('vk') IS NOT NULL"),
            one(conn, "SELECT to_regclass('alembic_version') IS NOT NULL"),
        )


def has_dblink(conn: psycopg.Connection) -> bool:
    return bool(one(conn, "SELECT count(*) FROM pg_available_extensions WHERE name = 'dblink'"))


def test_a_superuser_on_an_empty_database_may_migrate(empty_db_url: str) -> None:
    done = cli(empty_db_url, "migrate", "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "migrate would succeed" in done.stdout and "superuser" in done.stdout

    done = cli(empty_db_url, "migrate", "--check", "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    with psycopg.connect(empty_db_url) as conn:
        version = one(conn, "SHOW server_version")
        available = one(conn, "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
    assert (got["passed"], got["server_version"], got["pgvector_available"]) == (True, version, available)
    assert got["pgvector_version"] is None  # not installed yet: migrate creates it
    assert (got["revision"], got["target"], got["pending"]) == (None, migrate.head_revision(), migrate.revisions())
    assert failed(got) == []
    assert set(checks(got)) >= {
        "server",
        "role",
        "pgvector",
        "revision",
        "schemas",
        "group-roles",
        "dblink",
        "loopback",
    }
    # `doctor` is the same report, and neither changed anything.
    assert report(empty_db_url) == (0, got)
    assert installed(empty_db_url) == (False, False)


def test_a_managed_owner_may_migrate_and_is_told_what_text_queries_need(scratch: Scratch) -> None:
    """The README's managed setup: the owner has CREATEROLE and owns the database, an administrator created
    the extensions. It passes; what text queries lack is a warning that says what to run."""
    owner = scratch.role("CREATEROLE")
    database = scratch.database(owner)
    with scratch.admin(database) as admin:
        admin.execute("CREATE EXTENSION vector")
        dblink = has_dblink(admin)
        if dblink:
            admin.execute("CREATE SCHEMA vk_dblink")
            admin.execute("REVOKE ALL ON SCHEMA vk_dblink FROM PUBLIC")
            admin.execute("CREATE EXTENSION dblink SCHEMA vk_dblink")
        version = admin.info.server_version
        groups = one(admin, "SELECT count(*) FROM pg_roles WHERE rolname IN ('vk_app', 'vk_worker', 'vk_admin')")
    url = owner.url(database)

    status, got = report(url)
    assert status == 0 and failed(got) == [], got
    found = checks(got)
    # pgvector 0.7 (the PostgreSQL 16 lane) works without iterative index scans: a warning.
    expected = "warn" if got["pgvector_version"].startswith("0.7.") else "ok"
    assert found["pgvector"]["status"] == expected, found["pgvector"]
    # Where the server has no dblink (the PostgreSQL 16 lane), 0011 creates vk_dblink all the same.
    schemas = "vk and vk_expr" if dblink else "vk, vk_expr and vk_dblink"
    assert (found["schemas"]["status"], found["schemas"]["found"]) == ("ok", f"migrate creates {schemas}")
    loopback = found["loopback"]
    assert loopback["status"] == "warn" and "no vk_loopback" in loopback["found"]
    assert any(s.startswith('CREATE SERVER "vk_loopback" FOREIGN DATA WRAPPER dblink_fdw') for s in loopback["sql"])
    assert f'CREATE USER MAPPING FOR "{owner.name}" SERVER "vk_loopback"' in " ".join(loopback["sql"])
    if version >= 160000 and groups == 3:
        # Groups it did not create: it may make login roles members only with ADMIN OPTION.
        assert found["memberships"]["status"] == "warn"
        assert found["memberships"]["sql"] == [
            f'GRANT "vk_app", "vk_worker", "vk_admin" TO "{owner.name}" WITH ADMIN OPTION;'
        ]
    if not dblink:
        assert found["dblink"]["status"] == "warn" and "0A000" in found["dblink"]["found"]
        return
    # The README's statements leave the owner without USAGE on vk_dblink, which its text queries call.
    assert found["dblink"]["status"] == "warn"
    assert found["dblink"]["sql"] == [f'GRANT USAGE ON SCHEMA "vk_dblink" TO "{owner.name}";']

    with scratch.admin(database) as admin:
        for statement in found["dblink"]["sql"] + found["memberships"]["sql"]:
            admin.execute(statement)
        # The loopback, to where this server is reached (a Unix socket's folder, or an address).
        with psycopg.connect(url) as conn:
            host, port = conn.info.host, str(conn.info.port)
        admin.execute(
            sql.SQL(
                "CREATE SERVER vk_loopback FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host {}, port {}, dbname {})"
            ).format(sql.Literal(host), sql.Literal(port), sql.Literal(database))
        )
        admin.execute(sql.SQL("GRANT USAGE ON FOREIGN SERVER vk_loopback TO {}").format(sql.Identifier(owner.name)))
        admin.execute(
            sql.SQL("CREATE USER MAPPING FOR {} SERVER vk_loopback OPTIONS (user {}, password {})").format(
                sql.Identifier(owner.name), sql.Literal(owner.name), sql.Literal(owner.password)
            )
        )
    status, got = report(url)
    found = checks(got)
    assert status == 0 and found["dblink"]["status"] == "ok" and found["memberships"]["status"] == "ok", got
    loopback = found["loopback"]
    # Tried: it answers where the server asks for the password (the lanes); the embedded server trusts every
    # local connection, and dblink refuses a role that is no superuser a connection no password was asked for.
    assert loopback["status"] == "ok" or "without asking for its password" in loopback["fix"], loopback
    assert "tried, and it answers" in loopback["found"] or "password or GSSAPI" in loopback["found"], loopback

    # And it migrates, as the owner; then nothing is left to apply.
    done = cli(url, "migrate")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"revision {migrate.head_revision()}" in done.stdout
    assert owner.password not in done.stdout + done.stderr
    status, got = report(url)
    assert status == 0 and got["revision"] == migrate.head_revision() and got["pending"] == [], got
    assert checks(got)["schemas"]["found"] == f"vk (owner {owner.name}); vk_expr (owner {owner.name})"


def test_a_role_that_owns_nothing_is_told_what_to_ask_for_and_migrate_changes_nothing(scratch: Scratch) -> None:
    nobody = scratch.role()
    database = scratch.database()
    with scratch.admin(database) as admin:
        admin.execute("CREATE EXTENSION vector")
    url = nobody.url(database)

    done = cli(url, "migrate", "--check")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f'GRANT CREATE ON DATABASE "{database}" TO "{nobody.name}";' in done.stdout
    assert f'GRANT CREATE ON SCHEMA "public" TO "{nobody.name}";' in done.stdout
    assert "migrate would fail: " in done.stdout

    status, got = report(url)
    assert status == 1 and not got["passed"]
    assert {"schemas", "revision"} <= set(failed(got)), got
    schemas = checks(got)["schemas"]
    # vk and vk_expr, and vk_dblink where 0011_search would install dblink.
    assert f"{nobody.name} may not create schemas (vk, vk_expr" in schemas["found"]
    assert schemas["found"].endswith(f") in database {database}")
    assert "ask the database's owner" in schemas["fix"]

    done = cli(url, "migrate")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "migrate stopped before changing anything" in done.stderr
    assert f'GRANT CREATE ON DATABASE "{database}" TO "{nobody.name}";' in done.stderr
    assert installed(url) == (False, False)
    # Without the checks it fails at the first statement refused, and rolls back.
    done = cli(url, "migrate", "--skip-checks")
    assert done.returncode == 1 and "permission denied" in done.stderr, done.stdout + done.stderr
    assert installed(url) == (False, False)


def test_pgvector_missing_and_not_creatable_fails_with_the_statement_to_ask_for(scratch: Scratch) -> None:
    owner = scratch.role("CREATEROLE")
    database = scratch.database(owner)
    status, got = report(owner.url(database))
    assert status == 1 and failed(got) == ["pgvector"], got
    pgvector = checks(got)["pgvector"]
    assert "may not create it (it takes a superuser)" in pgvector["found"]
    assert pgvector["fix"].startswith("ask an administrator to run, in database")
    assert pgvector["sql"] == ["CREATE EXTENSION vector;"]
    assert got["pgvector_version"] is None and got["pgvector_available"]


def test_a_superusers_loopback_is_tried(scratch: Scratch) -> None:
    database = scratch.database()
    with scratch.admin(database) as admin:
        if not has_dblink(admin):
            pytest.skip("this server has no dblink")
        admin.execute("CREATE SCHEMA vk_dblink")
        admin.execute("CREATE EXTENSION dblink SCHEMA vk_dblink")
    status, got = report(url_with_database(scratch.server_url, database))
    assert status == 0, got
    loopback = checks(got)["loopback"]
    assert loopback["status"] == "ok" and "over the Unix socket" in loopback["found"], loopback
    assert "tried, and it answers" in loopback["found"], loopback
    # Migrate would create vk_dblink only where dblink is missing: here it leaves it be.
    assert checks(got)["schemas"]["found"] == "migrate creates vk and vk_expr"
