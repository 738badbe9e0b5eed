"""Search: vk.search against the hand-written pgvector query it wraps, and its recall.

On N synthetic 384-d vectors (clustered, normalised) in one collection, with a
second model version's vectors in the same table:

- latency of vk.search / latency of the same k-NN query written by hand
  (median over Q queries, the two interleaved so drift hits both);
- recall@10 of vk.search against exact search, for several hnsw.ef_search;
- that results come from the index of the model asked for, never the other.

    python -m bench.search [--vectors 100000] [--queries 200]
"""

import argparse
import hashlib
import json
import statistics
import time
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from bench.database import bench_database

DIM = 384


def _clustered(n: int, rng: np.random.Generator, centroids: np.ndarray) -> np.ndarray:
    picks = rng.integers(0, len(centroids), n)
    x = centroids[picks] + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _load(conn: psycopg.Connection, collection_id: int, model_id: int, vectors: np.ndarray) -> None:
    sha = hashlib.sha256(b"synthetic").digest()
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY vk.embeddings (collection_id, pk, model_id, embedding, body, text_sha256) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["int8", "text", "int8", "vector", "text", "bytea"])
        for i, v in enumerate(vectors):
            copy.write_row((collection_id, str(i), model_id, v, f"synthetic row {i}", sha))


def _one(conn: psycopg.Connection, sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def run(url: str, *, vectors: int, queries: int, seed: int = 7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((200, DIM)).astype(np.float32)
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("CREATE TABLE bench_search (id int PRIMARY KEY, body text)")
        for version in (1, 2):
            conn.execute(
                "INSERT INTO vk.models (name, version, kind, dim) VALUES ('synthetic', %s, 'external', %s)",
                (version, DIM),
            )
        conn.execute("SELECT vk.attach('bench_search', 'id', 'body', 'synthetic@1')")
        conn.execute("SELECT vk.add_model('bench_search', 'synthetic@2')")
        c_id = _one(conn, "SELECT id FROM vk.collections WHERE name = 'bench_search'")
        ids = {
            v: _one(conn, "SELECT id FROM vk.models WHERE name = 'synthetic' AND version = %s", (v,)) for v in (1, 2)
        }
        indexes: dict[int, str] = dict(
            conn.execute(
                "SELECT model_id, index_name FROM vk.collection_models WHERE collection_id = %s", (c_id,)
            ).fetchall()
        )
        # Bulk load first, index after (what a backfill of this size should do).
        definitions = {
            m: _one(conn, "SELECT pg_get_indexdef(to_regclass('vk.' || %s))", (ix,)) for m, ix in indexes.items()
        }
        for ix in indexes.values():
            conn.execute(f"DROP INDEX vk.{ix}")
        start = time.perf_counter()
        _load(conn, c_id, ids[1], _clustered(vectors, rng, centroids))
        _load(conn, c_id, ids[2], _clustered(vectors // 10, rng, centroids))  # the other version, same table
        load_s = time.perf_counter() - start
        conn.execute("SET maintenance_work_mem = '1GB'")
        start = time.perf_counter()
        for definition in definitions.values():
            conn.execute(definition)
        index_s = time.perf_counter() - start
        conn.execute("ANALYZE vk.embeddings")

        qs = _clustered(queries, rng, centroids)
        # The query vk.search runs, sent by hand with the same parameters.
        hand = _one(
            conn,
            "SELECT vk._nearest_sql(c, m, false, false, false) FROM vk.collections c, vk.models m "
            "WHERE c.id = %s AND m.id = %s",
            (c_id, ids[1]),
        )
        hand = hand.replace("$1", "%(q)s").replace("$2", "%(k)s")
        wrapped: list[float] = []
        direct: list[float] = []
        for q in qs:
            for kind in ("vk", "hand") if len(wrapped) % 2 == 0 else ("hand", "vk"):
                t = time.perf_counter()
                if kind == "vk":
                    conn.execute("SELECT pk FROM vk.search('bench_search', %s, 10, 'synthetic@1')", (q,)).fetchall()
                    wrapped.append(time.perf_counter() - t)
                else:
                    conn.execute(hand, {"q": q, "k": 10}).fetchall()
                    direct.append(time.perf_counter() - t)

        # Where vk.search's extra time goes: its lookups, and planning the query
        # it builds (EXECUTE plans on every call; the client's query was prepared
        # by psycopg after five runs, so its plan is cached).
        lookups = []
        for _ in range(200):
            t = time.perf_counter()
            conn.execute("SELECT vk.collection_model_v1('bench_search', 'synthetic@1')").fetchall()
            lookups.append(time.perf_counter() - t)
        empty = []
        for _ in range(200):
            t = time.perf_counter()
            conn.execute("SELECT 1").fetchall()
            empty.append(time.perf_counter() - t)
        with psycopg.ClientCursor(conn) as cur:
            explain = "EXPLAIN (ANALYZE, FORMAT JSON) " + hand.replace("%(q)s", "%s").replace("%(k)s", "10")
            planning = [cur.execute(explain, (q, q)).fetchone()[0][0]["Planning Time"] for q in qs[:50]]  # type: ignore[index]

        exact = []
        with conn.transaction():
            conn.execute("SET LOCAL enable_indexscan = off")
            for q in qs:
                exact.append({r[0] for r in conn.execute(hand, {"q": q, "k": 10})})
        recall = {}
        for ef in (40, 80, 160, 320):
            conn.execute(f"SET hnsw.ef_search = {ef}")
            got = [
                {r[0] for r in conn.execute("SELECT pk FROM vk.search('bench_search', %s, 10, 'synthetic@1')", (q,))}
                for q in qs
            ]
            recall[ef] = round(float(np.mean([len(g & e) / 10 for g, e in zip(got, exact, strict=True)])), 4)
        conn.execute("RESET hnsw.ef_search")

        # Two versions in one table: each search reads its own version's index only.
        plans = {}
        with psycopg.ClientCursor(conn) as cur:
            for version, model_id in ids.items():
                sql = _one(
                    conn,
                    "SELECT vk._nearest_sql(c, m, false, false, false) FROM vk.collections c, vk.models m "
                    "WHERE c.id = %s AND m.id = %s",
                    (c_id, model_id),
                )
                plan = "\n".join(
                    r[0] for r in cur.execute("EXPLAIN " + sql.replace("$1", "%s").replace("$2", "10"), (qs[0], qs[0]))
                )
                plans[version] = indexes[model_id] in plan and indexes[ids[3 - version]] not in plan
        v2_rows = _one(conn, "SELECT count(*) FROM vk.search('bench_search', %s, 1000, 'synthetic@2')", (qs[0],))
    return {
        "vectors": vectors,
        "queries": queries,
        "load_s": round(load_s, 1),
        "index_build_s": round(index_s, 1),
        "vk_search_median_ms": round(statistics.median(wrapped) * 1000, 3),
        "hand_written_median_ms": round(statistics.median(direct) * 1000, 3),
        "vk_search_over_hand_written": round(statistics.median(wrapped) / statistics.median(direct), 3),
        "recall_at_10_default_ef_search": recall[40],
        "profile_ms": {
            "lookups_of_collection_and_model_minus_round_trip": round(
                (statistics.median(lookups) - statistics.median(empty)) * 1000, 3
            ),
            "planning_of_the_knn_query": round(statistics.median(planning), 3),
        },
        "recall_at_10_by_ef_search": recall,
        "each_version_uses_its_own_index": all(plans.values()),
        "version_2_rows_found_with_k_1000": v2_rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    with bench_database() as url:
        print(json.dumps(run(url, vectors=args.vectors, queries=args.queries), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
