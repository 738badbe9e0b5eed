"""vk distributed over Citus (vk.distribute, `vectorkeep distribute`): run by .ci/lane-citus, where every test
database is a copy of a distributed template on a coordinator and two worker nodes (tests/conftest.py).

On one plain server these tests are skipped; the rest of the suite checks that nothing of this changes
what a single server does (vk.collect_captured_v1 finds nothing there, the triggers queue at once).
"""

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from conftest import as_user
from pgvector.psycopg import register_vector

from helpers import app_table, drain, embeddings, one, queue_size, running_lane, serve
from vectorkeep.db.distribute import distribute
from vectorkeep.workers.encoder_cache import EncoderCache

pytestmark = pytest.mark.citus


@pytest.fixture(autouse=True)
def _on_citus(citus_nodes: dict[str, Any] | None) -> None:
    if citus_nodes is None:
        pytest.skip("runs on a Citus cluster (.ci/lane-citus)")


def on_every_node(conn: psycopg.Connection, command: str) -> list[str]:
    """What a command returns on each node (coordinator included), in node order; fails if one fails."""
    rows = conn.execute(
        "SELECT nodeid, success, result FROM run_command_on_all_nodes(%s) ORDER BY nodeid", (command,)
    ).fetchall()
    assert all(ok for _, ok, _ in rows), rows
    return [result for _, _, result in rows]


def test_distribute_places_every_table_and_is_idempotent(db_url: str, conn: psycopg.Connection) -> None:
    first = {p.table_name: p for p in distribute(db_url)}
    again = {p.table_name: p for p in distribute(db_url)}
    assert first == again
    queue = first["vk.queue"]
    assert (queue.citus_table_type, queue.distribution_column) == ("distributed", "collection_id")
    assert first["vk.embeddings"].distribution_column == "collection_id"
    assert first["vk.documents"].distribution_column == "id"
    for small in ("vk.models", "vk.collections", "vk.collection_models", "vk.jobs", "vk.model_kinds"):
        assert first[small].citus_table_type == "reference", small
    colocated = one(
        conn,
        "SELECT count(DISTINCT colocationid) FROM pg_dist_partition "
        "WHERE logicalrelid IN ('vk.queue'::regclass, 'vk.embeddings'::regclass)",
    )
    assert colocated == 1
    # Every node has the capture outbox and every vk function, with the coordinator's grants.
    assert on_every_node(conn, "SELECT count(*) FROM vk.captured") == ["0", "0", "0"]
    functions = on_every_node(
        conn,
        "SELECT md5(string_agg(p.oid::regprocedure::text || coalesce(p.proacl::text, ''), ',' "
        "ORDER BY p.oid::regprocedure::text)) FROM pg_proc p WHERE p.pronamespace = 'vk'::regnamespace",
    )
    assert len(set(functions)) == 1, functions


def test_distribute_refuses_a_bad_placement_with_a_hint(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as e:
        conn.execute("SELECT * FROM vk.distribute(embeddings_by => 'sku')")
    assert "collection_id" in str(e.value.diag.message_hint)


def test_attach_refuses_a_table_of_the_coordinator_only(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE local_notes (id int PRIMARY KEY, body text)")
    with pytest.raises(psycopg.errors.FeatureNotSupported) as e:
        conn.execute("SELECT vk.attach('local_notes', 'id', 'body')")
    assert "create_distributed_table('local_notes', 'id')" in str(e.value.diag.message_hint)


def test_a_distributed_application_table_gets_vectors_nothing_lost_or_duplicated(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("CREATE TABLE products (sku text PRIMARY KEY, title text, body text, stock int DEFAULT 0)")
    app_table(conn, "products", "sku")
    conn.execute("SELECT vk.attach('products', 'sku', 'title || '' '' || body', 'minilm@1')")
    # Statements touching shards on both workers, one that rolls back, and a worker draining meanwhile.
    conn.execute(
        "INSERT INTO products (sku, title, body) SELECT 'p' || g, 'Product ' || g, 'made of wood number ' || g "
        "FROM generate_series(1, 120) g"
    )
    with pytest.raises(psycopg.errors.DivisionByZero), conn.transaction():
        conn.execute("INSERT INTO products (sku, title, body) VALUES ('gone', 'Never', 'rolled back')")
        conn.execute("SELECT 1 / 0")
    worker = threading.Thread(target=drain, args=(db_url, encoders))
    worker.start()
    conn.execute(
        "INSERT INTO products (sku, title, body) SELECT 'q' || g, 'Tool ' || g, 'steel' FROM generate_series(1, 40) g"
    )
    worker.join()
    conn.execute("UPDATE products SET body = 'made of glass' WHERE sku IN ('p1', 'p2', 'q3')")
    conn.execute("UPDATE products SET stock = 5 WHERE sku LIKE 'p1%'")  # not the text: nothing to do
    conn.execute("DELETE FROM products WHERE sku IN ('p3', 'q4')")
    # (Citus refuses to change a row's distribution column: no key changes here.)
    assert queue_size(conn) == 3  # p1, p2, q3 changed; p3, q4 forgotten
    drain(db_url, encoders)

    rows: dict[str, str] = dict(conn.execute("SELECT sku, title || ' ' || body FROM products").fetchall())
    vectors = embeddings(conn, "products")
    assert set(vectors) == set(rows) and len(rows) == 158
    assert all(vectors[k]["body"] == body for k, body in rows.items())
    assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE collection_id = vk.collection_id('products')") == len(
        rows
    )
    assert queue_size(conn) == 0
    assert on_every_node(conn, "SELECT count(*) FROM vk.captured") == ["0", "0", "0"]

    conn.execute("TRUNCATE products")
    assert embeddings(conn, "products") == {}


@pytest.fixture
def corpus_conn(corpus_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(corpus_url, autocommit=True) as c:
        register_vector(c)
        yield c


def test_the_sql_api_answers_on_the_coordinator(
    corpus_conn: psycopg.Connection, corpus_url: str, encoders: EncoderCache, lane_encoders: EncoderCache
) -> None:
    conn = corpus_conn
    keys, vectors = zip(
        *conn.execute(
            "SELECT pk, embedding FROM vk.embeddings WHERE collection_id = vk.collection_id('documents') AND chunk = 0"
        ).fetchall(),
        strict=True,
    )
    matrix = np.array([v.to_numpy() for v in vectors])
    query = matrix[7] + 0.05 * matrix[11]
    exact = [keys[i] for i in np.argsort(-(matrix @ query) / np.linalg.norm(matrix, axis=1))[:10]]

    # ef_search reaches the shard's HNSW index, in a transaction or not: at 400 it answers exactly.
    with conn.transaction():
        conn.execute("SET LOCAL hnsw.ef_search = 400")
        found = [r[0] for r in conn.execute("SELECT pk FROM vk.search('documents', %s, 10)", (query,)).fetchall()]
    assert found == exact
    conn.execute("SET hnsw.ef_search = 400")
    found = [r[0] for r in conn.execute("SELECT pk FROM vk.search('documents', %s, 10)", (query,)).fetchall()]
    conn.execute("RESET hnsw.ef_search")
    assert found == exact
    # k above the worker node's ef_search (40): the shard's scan is widened to k, outside a transaction too.
    assert len(conn.execute("SELECT pk FROM vk.search('documents', %s, 100)", (query,)).fetchall()) == 100
    similar = [r[0] for r in conn.execute("SELECT pk FROM vk.similar('documents', %s, 5)", (keys[7],))]
    assert len(similar) == 5 and keys[7] not in similar

    conn.execute("SELECT vk.set_metadata('documents', $$jsonb_build_object('even', id % 2 = 0)$$)")
    drain(corpus_url, encoders)
    evens = conn.execute(
        "SELECT pk FROM vk.search('documents', %s, 10, filter => '{\"even\": true}')", (query,)
    ).fetchall()
    assert len(evens) == 10 and all(int(pk) % 2 == 0 for (pk,) in evens)

    # A session's HNSW settings reach the node that runs the query, outside a transaction too: the shard's
    # own settings, read in a query that carries them as vk._nearest_sql does, are the session's.
    conn.execute("SET hnsw.ef_search = 77")
    conn.execute("SET hnsw.iterative_scan = 'relaxed_order'")
    c_id = one(conn, "SELECT vk.collection_id('documents')")
    statement = one(
        conn,
        "SELECT vk._nearest_sql(vk.collection_v1(%s), vk.model_v1((vk.model('minilm@1')).id), false, true, false)",
        (c_id,),
    )
    assert "vk._on_shard(77, 'relaxed_order')" in statement
    shard_settings = (
        "SELECT current_setting('hnsw.ef_search', true), current_setting('hnsw.iterative_scan', true) "
        f"FROM vk.embeddings e WHERE e.collection_id = {c_id}"
    )
    # (The worker node's own: 40 and off, or none yet where its session has not loaded pgvector.)
    assert conn.execute(shard_settings + " LIMIT 1").fetchone() in {("40", "off"), (None, None)}
    assert conn.execute(shard_settings + " AND vk._on_shard(77, 'relaxed_order') LIMIT 1").fetchone() == (
        "77",
        "relaxed_order",
    )
    conn.execute("RESET hnsw.ef_search; RESET hnsw.iterative_scan")

    with running_lane(corpus_url, lane_encoders):
        by_text = conn.execute("SELECT pk, body FROM vk.search('documents', 'functions and arguments', 5)").fetchall()
        hybrid = conn.execute("SELECT pk FROM vk.hybrid_search('documents', 'functions and arguments', 5)").fetchall()
    assert len(by_text) == 5 and len(hybrid) == 5

    recovered = conn.execute("SELECT pk FROM vk.recover(%s, 'minilm@1', 1)", (matrix[3],)).fetchall()
    assert [r[0] for r in recovered] == [keys[3]]

    status = conn.execute("SELECT rows, embedded, pending, stale, error FROM vk.status").fetchall()
    assert status == [(400, 400, 0, 0, None)]


def test_chunking_and_a_reembed_job_run_distributed(
    corpus_conn: psycopg.Connection, corpus_url: str, encoders: EncoderCache
) -> None:
    conn = corpus_conn
    conn.execute("SELECT vk.set_chunking('documents', 'sentences', 64)")
    drain(corpus_url, encoders)
    chunks = one(conn, "SELECT count(*) FROM vk.embeddings WHERE chunk > 0")
    assert chunks > 0
    one_vector = one(conn, "SELECT embedding FROM vk.embeddings WHERE chunk = 1 LIMIT 1")
    chunk_hits = conn.execute("SELECT pk, chunk FROM vk.search_chunks('documents', %s, 3)", (one_vector,)).fetchall()
    assert len(chunk_hits) == 3
    assert one(conn, "SELECT error FROM vk.status") is None


def test_row_security_follows_the_source_table_on_every_node(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache, login: Any, citus_nodes: dict[str, Any]
) -> None:
    for table in ("secrets", "notes"):
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, body text)")
        app_table(conn, table, "id")
        conn.execute(f"SELECT vk.attach('{table}', 'id', 'body', 'minilm@1')")
        conn.execute(f"INSERT INTO {table} SELECT g, '{table} number ' || g FROM generate_series(1, 30) g")
    drain(db_url, encoders)
    reader = login("vk_app")
    conn.execute(f"GRANT SELECT ON notes TO {reader.split('://')[1].split('@')[0]}")
    with psycopg.connect(reader, autocommit=True) as app:
        register_vector(app)
        seen = {c for (c,) in app.execute("SELECT DISTINCT collection_id FROM vk.embeddings").fetchall()}
        assert seen == {one(conn, "SELECT vk.collection_id('notes')")}
        # (vk.documents is vk's own table, which vk_app may read.)
        assert [r[0] for r in app.execute("SELECT collection FROM vk.status")] == ["documents", "notes"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT * FROM vk.search('secrets', (SELECT embedding FROM vk.embeddings LIMIT 1), 3)")
    # Straight to a worker node: the same rights, vk's owner-run functions refused.
    worker_url = as_user(
        db_url.replace(f":{citus_nodes['coordinator_port']}/", f":{citus_nodes['worker_ports'][0]}/"),
        reader.split("://")[1].split("@")[0],
    )
    with psycopg.connect(worker_url, autocommit=True) as app:
        seen = {c for (c,) in app.execute("SELECT DISTINCT collection_id FROM vk.embeddings").fetchall()}
        assert seen <= {one(conn, "SELECT vk.collection_id('notes')")}
        for attack in (
            "SELECT vk._forget(1, ARRAY['1'])",
            "SELECT vk.move_captured_v1()",
            "SELECT count(*) FROM vk.captured",
            "SELECT * FROM vk_expr.text_c2(ARRAY['1'])",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(attack)


def test_a_trained_version_is_reembedded_and_activated_distributed(
    corpus_conn: psycopg.Connection, corpus_url: str, encoders: EncoderCache
) -> None:
    conn = corpus_conn
    job = one(conn, """SELECT vk.train('words', 'tfidf', '{"dim": 16}', collection => 'documents')""")
    serve(corpus_url, encoders)
    assert one(conn, "SELECT status FROM vk.jobs WHERE id = %s", (job,)) == "succeeded"
    model = one(conn, "SELECT name || '@' || version FROM vk.models WHERE trained_by_job = %s", (job,))
    conn.execute("SELECT vk.reembed('documents', %s)", (model,))
    serve(corpus_url, encoders)
    conn.execute("SELECT vk.activate('documents', %s)", (model,))
    assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE model_id = (vk.model(%s)).id", (model,)) == 400
    assert one(conn, "SELECT model FROM vk.status WHERE is_default") == model
    hits = conn.execute(
        "SELECT pk FROM vk.search('documents', %s, 3)",
        (one(conn, "SELECT embedding FROM vk.embeddings WHERE model_id = (vk.model(%s)).id LIMIT 1", (model,)),),
    ).fetchall()
    assert len(hits) == 3


def test_a_mover_killed_on_its_node_loses_and_duplicates_nothing(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache, citus_nodes: dict[str, Any]
) -> None:
    """vk.move_captured_v1 (owner-run, on every node) killed while it waits to write the queue: its node
    keeps the captured keys, the next collection moves them once."""
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    app_table(conn, "notes", "id")
    conn.execute("SELECT vk.attach('notes', 'id', 'body', 'minilm@1')")
    conn.execute("INSERT INTO notes SELECT g, 'first text ' || g FROM generate_series(1, 40) g")
    drain(db_url, encoders)
    conn.execute("UPDATE notes SET body = 'second text ' || id::text")  # captured on the nodes holding the rows
    captured = sum(map(int, on_every_node(conn, "SELECT count(*) FROM vk.captured")))
    assert captured == 40

    # Every shard of the queue locked on its node: each mover blocks on its first write.
    node_url = {
        port: db_url.replace(f":{citus_nodes['coordinator_port']}/", f":{port}/")
        for port in (citus_nodes["coordinator_port"], *citus_nodes["worker_ports"])
    }
    shards = conn.execute(
        "SELECT p.nodeport, shard_name('vk.queue', s.shardid) FROM pg_dist_shard s "
        "JOIN pg_dist_shard_placement p USING (shardid) WHERE s.logicalrelid = 'vk.queue'::regclass"
    ).fetchall()
    lockers = {port: psycopg.connect(url) for port, url in node_url.items()}
    movers = "SELECT pid FROM pg_stat_activity WHERE query LIKE '%vk.move_captured_v1()%' AND pid <> pg_backend_pid()"
    try:
        for port, shard in shards:
            lockers[port].execute("SET LOCAL citus.enable_manual_changes_to_shards = on")
            lockers[port].execute(f"LOCK TABLE {shard} IN EXCLUSIVE MODE")
        failed: list[BaseException] = []

        def collect_once() -> None:
            try:
                with psycopg.connect(db_url, autocommit=True) as c:
                    c.execute("SELECT vk.collect_captured_v1()")
            except psycopg.Error as e:
                failed.append(e)

        collector = threading.Thread(target=collect_once)
        collector.start()
        killed = 0
        deadline = time.monotonic() + 60
        # Each node's mover, killed as it waits (those with keys to move block until then).
        while collector.is_alive() and time.monotonic() < deadline:
            for url in node_url.values():
                # Not from the lockers: a transaction reads pg_stat_activity once.
                with psycopg.connect(url, autocommit=True) as watcher:
                    killed += sum(
                        bool(one(watcher, f"SELECT pg_terminate_backend({pid})"))
                        for (pid,) in watcher.execute(movers).fetchall()
                    )
            time.sleep(0.05)
        collector.join(timeout=60)
        assert killed and failed and "could not move the captured keys" in str(failed[0])
    finally:
        for locker in lockers.values():
            locker.rollback()
            locker.close()

    # Nothing moved by the killed movers, nothing lost: the keys wait on their nodes, then move once.
    assert queue_size(conn) == 40
    drain(db_url, encoders)
    bodies = embeddings(conn, "notes")
    assert len(bodies) == 40 and all(v["body"] == f"second text {pk}" for pk, v in bodies.items())
    assert on_every_node(conn, "SELECT count(*) FROM vk.captured") == ["0", "0", "0"]
    assert queue_size(conn) == 0
