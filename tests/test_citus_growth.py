"""vk distributed over a Citus cluster of its own (tests/citus_cluster.py) while it works: a worker node
added and the shards rebalanced, and a worker node restarted, with a vectorkeep worker embedding and
searches running. Nothing may be lost, embedded twice or left stale, and searches keep answering.

Run by .ci/lane-citus (VECTORKEEP_TEST_CITUS=1); builds Citus first when no cached build exists.
"""

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from citus_cluster import CitusCluster, own_cluster
from pgvector.psycopg import register_vector

from helpers import FAST_RETRY, background_worker, one, wait_for
from vectorkeep.db import migrate, registry
from vectorkeep.db.connect import connect
from vectorkeep.db.distribute import distribute
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.worker import WorkerSettings

pytestmark = pytest.mark.citus


@pytest.fixture(scope="module")
def citus() -> Iterator[CitusCluster]:
    # A restarted node may hold prepared transactions of the batch it was part of: recover them at
    # once rather than after Citus's default minute.
    with own_cluster({"citus.shard_count": "8", "citus.recover_2pc_interval": "'1s'"}) as cluster:
        yield cluster


def vk_database(citus: CitusCluster, name: str, encoders: EncoderCache) -> str:
    url = citus.create_database(name)
    migrate.upgrade(url)
    distribute(url)
    with connect(url, autocommit=True) as conn:
        encoders.get(conn, registry.by_spec(conn, "minilm@1"))  # records its fingerprint
    return url


def settled(conn: psycopg.Connection) -> bool:
    """Everything captured moved, nothing queued (False while a node does not answer yet)."""
    try:
        conn.execute("SELECT vk.collect_captured_v1()")
        return bool(one(conn, "SELECT count(*) FROM vk.queue") == 0)
    except (psycopg.OperationalError, psycopg.errors.InternalError_):
        return False


def assert_every_row_embedded_once(conn: psycopg.Connection, rows: int) -> None:
    """One vector per row of vk.documents, made from its current text (read apart: Citus joins two
    distributed tables only on their distribution columns)."""
    texts = {
        str(k): hashlib.sha256(body.encode()).digest() for k, body in conn.execute("SELECT id, body FROM vk.documents")
    }
    vectors = conn.execute("SELECT pk, text_sha256 FROM vk.embeddings WHERE chunk = 0").fetchall()
    assert len(texts) == rows
    assert len(vectors) == rows and {pk: bytes(sha) for pk, sha in vectors} == texts
    assert one(conn, "SELECT count(*) FROM vk.embeddings") == rows


@contextmanager
def searching(url: str, vector: object) -> Iterator[list[object]]:
    """vk.search in a loop in a thread; yields the list of its outcomes (row counts or errors)."""
    outcomes: list[object] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    register_vector(conn)
                    while not stop.is_set():
                        rows = conn.execute("SELECT pk FROM vk.search('documents', %s, 5)", (vector,)).fetchall()
                        outcomes.append(len(rows))
                        time.sleep(0.05)
            except psycopg.Error as e:
                outcomes.append(e)
                time.sleep(0.2)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield outcomes
    finally:
        stop.set()
        thread.join(10)


def insert(conn: psycopg.Connection, first: int, count: int) -> None:
    conn.execute(
        "INSERT INTO vk.documents (body) SELECT 'document ' || g || ' about topic ' || (g %% 17) "
        "FROM generate_series(%s::int, %s::int) g",
        (first, first + count - 1),
    )


def test_migrate_creates_on_the_worker_nodes_the_roles_a_plain_database_made(citus: CitusCluster) -> None:
    # First in this module: on a new cluster, before any Citus database has created vk's roles.
    roles = "SELECT array_agg(rolname::text ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'vk\\_%'"
    with psycopg.connect(citus.workers[0].url("postgres"), autocommit=True) as worker:
        assert one(worker, roles) is None
        # Another vk install on the coordinator, in a database without Citus: the roles on that node only.
        with psycopg.connect(citus.coordinator_url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE vk_plain")
        migrate.upgrade(citus.coordinator_url("vk_plain"))
        assert one(worker, roles) is None

        url = citus.create_database("vk_roles")
        migrate.upgrade(url)  # it grants to vk_app on distributed objects: "role does not exist" there before
        assert one(worker, roles) == ["vk_admin", "vk_app", "vk_worker"]
    citus.drop_database("vk_roles")
    with psycopg.connect(citus.coordinator_url("postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE vk_plain WITH (FORCE)")


def test_a_node_added_and_shards_rebalanced_while_embedding_and_searching(
    citus: CitusCluster, encoders: EncoderCache
) -> None:
    url = vk_database(citus, "growth", encoders)
    settings = WorkerSettings(retry=FAST_RETRY, poll_interval=0.2)
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        insert(conn, 1, 200)
        with background_worker(url, encoders, settings):
            wait_for(lambda: settled(conn), 120, "the first rows embedded")
            vector = one(conn, "SELECT embedding FROM vk.embeddings LIMIT 1")
            with searching(url, vector) as outcomes:
                citus.add_worker()
                distribute(url)  # again after a node joins: its outbox of captured keys
                conn.execute("SELECT citus_rebalance_start()")
                insert(conn, 201, 100)  # while shards move
                conn.execute("SELECT citus_rebalance_wait()")
                insert(conn, 301, 100)
                wait_for(lambda: settled(conn), 180, "every row embedded after the rebalance")
        nodes = {
            port
            for (port,) in conn.execute(
                "SELECT DISTINCT nodeport FROM citus_shards WHERE table_name = 'vk.embeddings'::regclass"
            )
        }
        assert nodes == {w.port for w in citus.workers} and len(nodes) == 3
        assert_every_row_embedded_once(conn, 400)
    errors = [o for o in outcomes if not isinstance(o, int)]
    assert errors == [] and len(outcomes) > 10 and set(outcomes) == {5}


def test_a_worker_node_restarted_mid_batch_loses_and_duplicates_nothing(
    citus: CitusCluster, encoders: EncoderCache
) -> None:
    url = vk_database(citus, "restart", encoders)
    settings = WorkerSettings(retry=FAST_RETRY, poll_interval=0.2, batch_size=16)
    with psycopg.connect(url, autocommit=True) as conn:
        insert(conn, 1, 400)
        collection = one(conn, "SELECT vk.collection_id('documents')")
        port = one(
            conn,
            "SELECT nodeport FROM citus_shards WHERE table_name = 'vk.embeddings'::regclass "
            "AND shardid = get_shard_id_for_distribution_column('vk.embeddings', %s)",
            (collection,),
        )
        node = next(w for w in citus.workers if w.port == port)
        with background_worker(url, encoders, settings):
            wait_for(lambda: one(conn, "SELECT count(*) FROM vk.embeddings") >= 50, 120, "a first batch")
            citus.restart(node)  # the shard holding the collection's vectors and queue goes away mid-batch
            wait_for(lambda: settled(conn), 240, "every row embedded after the restart")
        assert_every_row_embedded_once(conn, 400)
        assert one(conn, "SELECT count(*) FROM vk.queue WHERE dead") == 0
