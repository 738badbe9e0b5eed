"""The Citus test cluster itself (tests/citus_cluster.py): pgvector tables distributed over two workers.

The first run builds Citus from the source tarball ($VECTORKEEP_CITUS_TARBALL, else
../shared/vendor/citus-14.0.1.tar.gz) into .vectorkeep/citus-14.0.1/ (about 5 minutes on two
cores); later runs reuse it. Without a tarball or a cached build the tests are skipped, and
unless VECTORKEEP_TEST_CITUS is set (.ci/lane-citus sets it; not yet part of .ci/run).
"""

import logging
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from citus_cluster import CitusCluster, own_cluster

log = logging.getLogger(__name__)

pytestmark = pytest.mark.citus

DIM = 8


@pytest.fixture(scope="module")
def citus() -> Iterator[CitusCluster]:
    # Few shards keep the cluster light on a two-core machine; still several per worker.
    with own_cluster({"citus.shard_count": "8"}) as cluster:
        yield cluster


def _vector(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in v) + "]"


def test_vectors_distributed_over_the_workers_are_searched_through_the_coordinator(citus: CitusCluster) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    rows = [(i % 6, i, _vector(v)) for i, v in enumerate(vectors)]
    query = rng.standard_normal(DIM).astype(np.float32)

    with psycopg.connect(citus.url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE items (collection_id int, id bigint, embedding vector({DIM}),"
            " PRIMARY KEY (collection_id, id))"
        )
        conn.execute("SELECT create_distributed_table('items', 'collection_id')")
        conn.execute("CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO items VALUES (%s, %s, %s)", rows)

        nodes = {
            port
            for (port,) in conn.execute(
                "SELECT DISTINCT nodeport FROM citus_shards WHERE table_name = 'items'::regclass"
            )
        }
        assert nodes == {w.port for w in citus.workers}

        # Across all shards: each returns its top k, the coordinator merges.
        distances = np.linalg.norm(vectors - query, axis=1)
        everywhere = conn.execute(
            "SELECT id FROM items ORDER BY embedding <-> %s::vector LIMIT 5", (_vector(query),)
        ).fetchall()
        assert [r[0] for r in everywhere] == list(np.argsort(distances)[:5])

        # One collection: routed to the one shard that holds it.
        in_three = np.array([i for i in range(len(vectors)) if i % 6 == 3])
        routed = conn.execute(
            "SELECT id FROM items WHERE collection_id = 3 ORDER BY embedding <-> %s::vector LIMIT 5", (_vector(query),)
        ).fetchall()
        assert [r[0] for r in routed] == list(in_three[np.argsort(distances[in_three])[:5]])
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN (COSTS OFF) SELECT id FROM items WHERE collection_id = 3"
                " ORDER BY embedding <-> %s::vector LIMIT 5",
                (_vector(query),),
            )
        )
        assert "Task Count: 1" in plan

    # The HNSW index was made on every shard, on the workers (whose catalogue hides shards unless asked).
    for url in citus.worker_urls:
        with psycopg.connect(url) as conn:
            conn.execute("SET citus.override_table_visibility = off")
            (count,) = conn.execute(
                "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'items_hnsw_%' AND indexdef LIKE '%USING hnsw%'"
            ).fetchone() or (0,)
            assert count > 0


def test_an_added_worker_takes_shards_after_a_rebalance(citus: CitusCluster) -> None:
    url = citus.create_database("rebalance")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE t (collection_id int, embedding vector({DIM}))")
        conn.execute("SELECT create_distributed_table('t', 'collection_id')")
        conn.execute(
            f"INSERT INTO t SELECT g % 40, array_fill(g::real, ARRAY[{DIM}])::vector FROM generate_series(1, 400) g"
        )
    citus.add_worker()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT rebalance_table_shards(shard_transfer_mode := 'block_writes')")
        nodes = {
            port
            for (port,) in conn.execute("SELECT DISTINCT nodeport FROM citus_shards WHERE table_name = 't'::regclass")
        }
        assert nodes == {w.port for w in citus.workers}
        assert len(nodes) == 3
        (count,) = conn.execute("SELECT count(*) FROM t").fetchone() or (0,)
        assert count == 400
    citus.drop_database("rebalance")
