"""Scale: a backfill end to end against a bulk load, and vector against halfvec.

1. bulkload: a collection of N rows gets a second version (no-op encoder) by
   vk.reembed; one worker process's service (queue worker + job runner, as
   `vectorkeep worker` runs them) queues, claims, writes every vector and
   builds the version's HNSW index. Against it, the same vectors are COPied
   (binary) into a plain table and indexed with the same HNSW settings
   (maintenance_work_mem 1GB, 2 parallel workers): the physical floor of
   loading and indexing them. Figure: rows/s of the first / rows/s of the
   second (goal >= 0.7).
2. halfvec: N clustered 384-d vectors stored for two versions of one
   collection, one `vector`, one `halfvec`, each indexed by vk.build_index_v1;
   index sizes, build seconds, recall@10 against exact search (numpy, float64)
   at pgvector's default hnsw.ef_search (40) and at 100, and median vk.search
   latency, the two interleaved.

    python -m bench.scale [--rows 200000] [--vectors 100000] [--queries 200]
"""

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from bench.database import bench_database
from bench.ingest import NOOP_KIND, NoopEncoder, texts
from bench.search import DIM, _clustered, _load
from vectorkeep.db.connect import connect
from vectorkeep.workers import kinds
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.service import Service
from vectorkeep.workers.worker import WorkerSettings

INDEX_SETTINGS = "SET maintenance_work_mem = '1GB'; SET max_parallel_maintenance_workers = 2"


def _one(conn: psycopg.Connection, sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def bulkload(url: str, *, rows: int, batch_size: int = 256) -> dict[str, Any]:
    kinds.EXTRA_LOADERS["noop"] = NoopEncoder
    corpus = texts(rows)
    with connect(url, autocommit=True) as conn:
        conn.execute(NOOP_KIND)
        for version in (1, 2):
            conn.execute(
                "INSERT INTO vk.models (name, version, kind, dim) VALUES ('noop', %s, 'noop', %s)", (version, DIM)
            )
        conn.execute("CREATE TABLE bench_bulk (id bigint PRIMARY KEY, body text)")
        with conn.cursor() as cur, cur.copy("COPY bench_bulk (id, body) FROM STDIN") as copy:
            for i, body in enumerate(corpus):
                copy.write_row((i, body))
        conn.execute("SELECT vk.attach('bench_bulk', 'id', 'body', 'noop@1')")
        # The search default's own backlog is not the figure: it goes, and noop@2 is the backfill.
        conn.execute("DELETE FROM vk.queue")
        conn.execute("VACUUM ANALYZE bench_bulk")
        job = _one(conn, "SELECT vk.reembed('bench_bulk', 'noop@2')")

    service = Service(url, WorkerSettings(batch_size=batch_size), encoders=EncoderCache())
    start = time.perf_counter()
    service.run(until_idle=True)
    ours = time.perf_counter() - start
    with connect(url, autocommit=True) as conn:
        status, metrics = conn.execute("SELECT status, metrics FROM vk.jobs WHERE id = %s", (job,)).fetchone()
        embedded = _one(conn, "SELECT embedded FROM vk.status WHERE collection = 'bench_bulk' AND model = 'noop@2'")
        index = _one(conn, "SELECT index FROM vk.status WHERE collection = 'bench_bulk' AND model = 'noop@2'")

    vectors = NoopEncoder({"dim": DIM}).encode(corpus)
    with connect(url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("CREATE TABLE bench_plain (id bigint PRIMARY KEY, embedding vector(384))")
        start = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY bench_plain (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "vector"])
            for i, v in enumerate(vectors):
                copy.write_row((i, v))
        copied = time.perf_counter() - start
        conn.execute(INDEX_SETTINGS)
        start = time.perf_counter()
        conn.execute("CREATE INDEX ON bench_plain USING hnsw (embedding vector_cosine_ops)")
        indexed = time.perf_counter() - start
    floor = copied + indexed
    return {
        "rows": rows,
        "job_status": status,
        "embedded": embedded,
        "index": index,
        "index_concurrently": metrics.get("index_concurrently"),
        "backfill_seconds": round(ours, 1),
        "backfill_index_seconds": metrics.get("index_seconds"),
        "backfill_rows_per_s": round(rows / ours, 1),
        "copy_seconds": round(copied, 1),
        "create_index_seconds": round(indexed, 1),
        "copy_and_index_rows_per_s": round(rows / floor, 1),
        "backfill_over_copy_and_index": round(floor / ours, 3),
    }


def halfvec(url: str, *, vectors: int, queries: int, seed: int = 11) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((200, DIM)).astype(np.float32)
    data = _clustered(vectors, rng, centroids)
    qs = _clustered(queries, rng, centroids)
    out: dict[str, Any] = {"vectors": vectors, "queries": queries}
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("CREATE TABLE bench_half (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('single', 1, 'external', %s)", (DIM,))
        conn.execute(
            "INSERT INTO vk.models (name, version, kind, dim, storage) VALUES ('half', 1, 'external', %s, 'halfvec')",
            (DIM,),
        )
        conn.execute("SELECT vk.attach('bench_half', 'id', 'body', 'single@1')")
        conn.execute("SELECT vk.add_model('bench_half', 'half@1')")
        c_id = _one(conn, "SELECT vk.collection_id('bench_half')")
        models = {s: _one(conn, "SELECT (vk.model(%s)).id", (f"{s}@1",)) for s in ("single", "half")}
        # Bulk load, then one index build each (attach and add_model built them empty: adopted vectors).
        for m_id in models.values():
            name = _one(conn, "SELECT vk._hnsw_index_name(%s, %s)", (c_id, m_id))
            conn.execute(sql.SQL("DROP INDEX vk.{}").format(sql.Identifier(name)))
        for m_id in models.values():
            _load(conn, c_id, m_id, data)
        conn.execute(INDEX_SETTINGS)
        for storage, m_id in models.items():
            start = time.perf_counter()
            state = _one(conn, "SELECT vk.build_index_v1(%s, %s)", (c_id, m_id))
            out[f"{storage}_index_build_seconds"] = round(time.perf_counter() - start, 1)
            out[f"{storage}_index_state"] = state
            out[f"{storage}_index_bytes"] = _one(
                conn, "SELECT pg_relation_size(to_regclass('vk.' || vk._hnsw_index_name(%s, %s)))", (c_id, m_id)
            )
            out[f"{storage}_heap_vector_bytes"] = _one(
                conn,
                "SELECT sum(pg_column_size(embedding)) FROM vk.embeddings WHERE collection_id = %s AND model_id = %s",
                (c_id, m_id),
            )
        conn.execute("ANALYZE vk.embeddings")
        exact = np.argsort(-(qs.astype(np.float64) @ data.astype(np.float64).T), axis=1)[:, :10]
        found: dict[str, list[set[int]]] = {"single": [], "half": []}
        times: dict[str, list[float]] = {"single": [], "half": []}
        for i, q in enumerate(qs):
            for storage in ("single", "half") if i % 2 == 0 else ("half", "single"):
                start = time.perf_counter()
                got = conn.execute("SELECT pk FROM vk.search('bench_half', %s, 10, %s)", (q, f"{storage}@1")).fetchall()
                times[storage].append(time.perf_counter() - start)
                found[storage].append({int(r[0]) for r in got})
        for storage in ("single", "half"):
            hits = [len(f & set(e.tolist())) for f, e in zip(found[storage], exact, strict=True)]
            out[f"{storage}_recall_at_10"] = round(sum(hits) / (10 * len(hits)), 4)
            out[f"{storage}_search_median_ms"] = round(statistics.median(times[storage]) * 1000, 3)
        # The graph, not the precision: both again with a wider search list.
        conn.execute("SET hnsw.ef_search = 100")
        for storage in ("single", "half"):
            hits = []
            for q, e in zip(qs, exact, strict=True):
                wider = conn.execute(
                    "SELECT pk FROM vk.search('bench_half', %s, 10, %s)", (q, f"{storage}@1")
                ).fetchall()
                hits.append(len({int(r[0]) for r in wider} & set(e.tolist())))
            out[f"{storage}_recall_at_10_ef_search_100"] = round(sum(hits) / (10 * len(hits)), 4)
        conn.execute("RESET hnsw.ef_search")
    out["halfvec_index_over_vector"] = round(out["half_index_bytes"] / out["single_index_bytes"], 3)
    out["halfvec_recall_minus_vector"] = round(out["half_recall_at_10"] - out["single_recall_at_10"], 4)
    out["halfvec_latency_over_vector"] = round(out["half_search_median_ms"] / out["single_search_median_ms"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--only", nargs="+", choices=("bulkload", "halfvec"), default=["bulkload", "halfvec"])
    args = parser.parse_args()
    result: dict[str, Any] = {}
    with bench_database() as url:
        if "bulkload" in args.only:
            result["bulkload"] = bulkload(url, rows=args.rows)
        if "halfvec" in args.only:
            result["halfvec"] = halfvec(url, vectors=args.vectors, queries=args.queries)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
