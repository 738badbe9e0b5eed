"""Managed mode: vectorkeep installed the way the README's "Install on your own server"
says, on a server where nobody from vectorkeep is a superuser.

An administrator (the superuser here) makes a role with CREATEROLE that owns the
database and creates the extensions; that owner migrates, makes the login roles of
its applications and workers, and gives text queries their loopback (a foreign
server and a user mapping). Every connection gives a scram-sha-256 password over TCP:
on a cluster of its own (tests/scram_server.py), or on a server lane, whose pg_hba.conf asks
every role for one in database vk_managed (VECTORKEEP_TEST_SCRAM_URL, .ci/lane-lib.sh).
"""

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql
from scram_server import password_server

from helpers import cli, drain, one, running_lane
from vectorkeep.db import migrate
from vectorkeep.workers.encoder_cache import EncoderCache

PREVIOUS = "0015_safety"
# The server lanes ask every role for its password in this database (.ci/lane-lib.sh).
DATABASE = "vk_managed"


@dataclass(frozen=True)
class Server:
    admin: str  # the administrator's (superuser's) URL, maintenance database
    host: str
    port: int

    def url(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"


@dataclass(frozen=True)
class Install:
    server: Server
    database: str
    owner: str
    password: str
    dblink: bool

    def as_owner(self, password: str | None = None) -> str:
        return self.server.url(self.owner, password or self.password, self.database)

    def admin_here(self) -> str:
        parts = urlsplit(self.server.admin)
        return parts._replace(path=f"/{self.database}").geturl()


@pytest.fixture(scope="module")
def scram_server(embedded_pgdata: Path | None) -> Iterator[Server]:
    url = os.environ.get("VECTORKEEP_TEST_SCRAM_URL")
    if url is None and os.environ.get("VECTORKEEP_TEST_ADMIN_URL"):
        pytest.skip(
            f"nothing says this server asks every role in database {DATABASE} for a password: "
            "set VECTORKEEP_TEST_SCRAM_URL"
        )
    if url is not None:
        yield _server(url)
        return
    base = Path(__file__).resolve().parent.parent / ".vectorkeep" / f"scram-{os.getpid()}"
    with password_server(base) as url:
        yield _server(url)


def _server(url: str) -> Server:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return Server(admin=url, host=parts.hostname, port=parts.port)


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


@pytest.fixture(scope="module")
def install(scram_server: Server) -> Iterator[Install]:
    """What the README asks an administrator for, done by the superuser; nothing migrated yet."""
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    owner, database, password = f"vkm_owner_{suffix}", DATABASE, secrets.token_urlsafe(16)
    with _admin(scram_server.admin) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(sql.Identifier(owner), password))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner)))
        dblink = one(conn, "SELECT count(*) FROM pg_available_extensions WHERE name = 'dblink'") == 1
        # Roles of an earlier install on this server: the owner may only make members of them with ADMIN OPTION
        # (PostgreSQL 16 and later; a role it creates itself it gets that for).
        existing = [r for (r,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'vk\\_%'").fetchall()]
        if existing and conn.info.server_version >= 160000:
            for role in {"vk_app", "vk_worker", "vk_admin"} & set(existing):
                conn.execute(
                    sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(sql.Identifier(role), sql.Identifier(owner))
                )
    made = Install(scram_server, database, owner, password, dblink)
    with _admin(made.admin_here()) as conn:
        conn.execute("CREATE EXTENSION vector")
        if dblink:
            conn.execute("CREATE SCHEMA vk_dblink")
            conn.execute("REVOKE ALL ON SCHEMA vk_dblink FROM PUBLIC")
            conn.execute("CREATE EXTENSION dblink SCHEMA vk_dblink")
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA vk_dblink TO {}").format(sql.Identifier(owner)))
            conn.execute(sql.SQL("GRANT USAGE ON FOREIGN DATA WRAPPER dblink_fdw TO {}").format(sql.Identifier(owner)))
    yield made
    with _admin(scram_server.admin) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        logins = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (f"vkm\\_%\\_{suffix}",)).fetchall()
        for (role,) in sorted(logins, key=lambda r: r[0] == owner):  # the owner, who made the others, last
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def login(install: Install, group: str) -> str:
    """A login role with a password that the owner makes in one of vectorkeep's groups; its URL.
    It gives its password like everyone else here."""
    name, password = f"vkm_{group}_{install.owner.removeprefix('vkm_owner_')}", secrets.token_urlsafe(16)
    with psycopg.connect(install.as_owner(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(name), password, sql.Identifier(group)
            )
        )
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(install.server.url(name, "not-the-password", install.database)).close()
    return install.server.url(name, password, install.database)


def test_every_connection_gives_its_password(install: Install) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(install.as_owner(password="not-the-password")).close()
    with psycopg.connect(install.as_owner()) as conn:
        assert one(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False


def test_the_owner_migrates_without_being_a_superuser(install: Install) -> None:
    done = cli(install.as_owner(), "migrate")
    assert done.returncode == 0, done.stderr
    assert install.password not in done.stdout + done.stderr
    with psycopg.connect(install.as_owner()) as conn:
        assert one(conn, "SELECT version_num FROM alembic_version") == migrate.head_revision()
        assert one(conn, "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'vk'") == install.owner
    checked = cli(install.as_owner(), "schema", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture(scope="module")
def notes(install: Install) -> dict[str, str]:
    """The owner's table `notes`, attached; an application login and a worker login (URLs)."""
    app, worker = login(install, "vk_app"), login(install, "vk_worker")
    app_role = urlsplit(app).username
    with psycopg.connect(install.as_owner(), autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id bigint PRIMARY KEY, body text)")
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE ON notes TO {}").format(sql.Identifier(str(app_role))))
        conn.execute("SELECT vk.attach('notes', 'id', 'body', 'minilm@1')")
    return {"app": app, "worker": worker}


def test_a_worker_login_embeds_what_an_application_login_writes(
    install: Install, notes: dict[str, str], encoders: EncoderCache
) -> None:
    texts = ["The harbour freezes in January.", "Bread rises overnight in a cold kitchen.", "Tides follow the moon."]
    with psycopg.connect(notes["app"], autocommit=True) as conn:
        for i, text in enumerate(texts):
            conn.execute("INSERT INTO notes VALUES (%s, %s)", (i, text))
    drain(notes["worker"], encoders)
    with psycopg.connect(notes["app"], autocommit=True) as conn:
        hits = conn.execute("SELECT pk FROM vk.search('notes', vk.row_vector('notes', '2'), 3)").fetchall()
    assert [pk for (pk,) in hits][:1] == ["2"]
    assert len(hits) == 3


def test_text_queries_go_through_the_loopback_with_a_user_mapping(
    install: Install, notes: dict[str, str], lane_encoders: EncoderCache
) -> None:
    query = "SELECT pk FROM vk.search('notes', 'ice on the sea in winter', 1)"
    with psycopg.connect(notes["app"], autocommit=True) as conn:
        if not install.dblink:
            with pytest.raises(psycopg.errors.FeatureNotSupported) as unsupported:
                conn.execute(query)
            assert "CREATE EXTENSION dblink" in str(unsupported.value.diag.message_hint)
            return
        # No superuser to connect back unchecked: the error says what to create.
        with running_lane(notes["worker"], lane_encoders), pytest.raises(psycopg.OperationalError) as refused:
            conn.execute(query)
        assert "CREATE SERVER vk_loopback" in str(refused.value.diag.message_hint)
    with psycopg.connect(install.as_owner(), autocommit=True) as conn:
        server = sql.Literal(install.server.host), sql.Literal(str(install.server.port)), sql.Literal(install.database)
        conn.execute(
            sql.SQL(
                "CREATE SERVER vk_loopback FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host {}, port {}, dbname {})"
            ).format(*server)
        )
        conn.execute(
            sql.SQL("CREATE USER MAPPING FOR {} SERVER vk_loopback OPTIONS (user {}, password {})").format(
                sql.Identifier(install.owner), sql.Literal(install.owner), sql.Literal(install.password)
            )
        )
    with running_lane(notes["worker"], lane_encoders), psycopg.connect(notes["app"], autocommit=True) as conn:
        assert one(conn, query) == "0"


def test_the_owner_downgrades_and_upgrades_again(install: Install, notes: dict[str, str]) -> None:
    down = cli(install.as_owner(), "migrate", "--downgrade", PREVIOUS)
    assert down.returncode == 0, down.stderr
    up = cli(install.as_owner(), "migrate")
    assert up.returncode == 0, up.stderr
    checked = cli(install.as_owner(), "schema", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with psycopg.connect(notes["app"], autocommit=True) as conn:
        assert one(conn, "SELECT pk FROM vk.search('notes', vk.row_vector('notes', '1'), 1)") == "1"
