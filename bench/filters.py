"""Filtered search: vk.search(..., filter => f) at 50%, 10%, 1% and 0.1% selectivity.

N synthetic 384-d vectors (clustered, normalised; as bench/search.py) in one
collection with its HNSW index, written straight into vk.embeddings with the
metadata {"p50": i % 2, "p10": i % 10, "p1": i % 100, "p01": i % 1000}, so that the
filters {"p50": 0}, {"p10": 0}, {"p1": 0} and {"p01": 0} match 50%, 10%, 1% and 0.1% of the rows,
independently of the clusters. For Q query vectors, at each selectivity:

- the rows vk.search returns with k = 10 (the promise: k whenever k match);
- recall@10 against the exact filtered ranking (every matching row, sorted);
- median latency of the filtered search / the unfiltered one (the four
  searches of a query in rotating order, so that drift hits them all);
- for contrast, what filtering after an unfiltered k = 10 search leaves;
- the time of the count vk._nearest runs first to choose between exact and
  index search (the "probe").

Latencies are taken twice: as the bulk load and ANALYZE leave the table (the
metadata GIN index with a pending list of fresh entries, which every lookup
reads in full, as on a table that workers keep writing to), and after VACUUM
has moved them into the index.

    python -m bench.filters [--vectors 100000] [--queries 100]
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
from psycopg.types.json import Jsonb

from bench.database import bench_database
from bench.search import DIM, _clustered

# Filter key -> the modulus of the row number it tests; {key: 0} matches 1 / modulus of the rows.
MODULI = {"p50": 2, "p10": 10, "p1": 100, "p01": 1000}
K = 10
Filters = dict[str, dict[str, object] | None]  # name -> filter (None: unfiltered)
CARELESS: Filters = {"typo_key": {"p1O": 0}, "wrong_type": {"p10": "0"}, "absent_value": {"p10": 99}}
SEARCH = "SELECT pk FROM vk.search('bench_filters', %s::vector, 10, filter => %s::jsonb)"


def _one(conn: psycopg.Connection, sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _load(conn: psycopg.Connection, collection_id: int, model_id: int, vectors: np.ndarray) -> None:
    sha = hashlib.sha256(b"synthetic").digest()
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY vk.embeddings (collection_id, pk, model_id, embedding, body, text_sha256, metadata) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["int8", "text", "int8", "vector", "text", "bytea", "jsonb"])
        for i, v in enumerate(vectors):
            metadata = Jsonb({key: i % modulus for key, modulus in MODULI.items()})
            copy.write_row((collection_id, str(i), model_id, v, f"synthetic row {i}", sha, metadata))


def _build(conn: psycopg.Connection, vectors: np.ndarray) -> tuple[int, int, dict[str, float]]:
    """The collection, bulk-loaded before its HNSW index is built (as bench/search.py); its ids and timings."""
    conn.execute("CREATE TABLE bench_filters (id int PRIMARY KEY, body text)")
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('synthetic', 1, 'external', %s)", (DIM,))
    conn.execute("SELECT vk.attach('bench_filters', 'id', 'body', 'synthetic@1')")
    c_id = _one(conn, "SELECT id FROM vk.collections WHERE name = 'bench_filters'")
    m_id = _one(conn, "SELECT id FROM vk.models WHERE name = 'synthetic' AND version = 1")
    index = _one(conn, "SELECT index_name FROM vk.collection_models WHERE collection_id = %s", (c_id,))
    definition = _one(conn, "SELECT pg_get_indexdef(to_regclass('vk.' || %s))", (index,))
    conn.execute(f"DROP INDEX vk.{index}")
    start = time.perf_counter()
    _load(conn, c_id, m_id, vectors)
    load_s = time.perf_counter() - start
    conn.execute("SET maintenance_work_mem = '1GB'")
    start = time.perf_counter()
    conn.execute(definition)
    index_s = time.perf_counter() - start
    conn.execute("ANALYZE vk.embeddings")
    return c_id, m_id, {"load_s": round(load_s, 1), "index_build_s": round(index_s, 1)}


def _exact(
    conn: psycopg.Connection, c_id: int, m_id: int, qs: np.ndarray, f: dict[str, object] | None
) -> list[set[str]]:
    """The true k nearest matching rows of each query: every match ranked, no index for the order."""
    where = "" if f is None else " AND metadata @> %(f)s"
    sql = (
        f"SELECT pk FROM vk.embeddings WHERE collection_id = {c_id} AND model_id = {m_id}{where} "
        f"ORDER BY (embedding::vector({DIM}) <=> %(q)s) + 0 LIMIT {K}"
    )
    with conn.transaction():
        conn.execute("SET LOCAL enable_indexscan = off")
        return [{r[0] for r in conn.execute(sql, {"q": q, "f": Jsonb(f)})} for q in qs]


def _timed(conn: psycopg.Connection, sql: str, params: tuple[Any, ...]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    rows = [r[0] for r in conn.execute(sql, params).fetchall()]
    return time.perf_counter() - start, rows


def _pass(
    conn: psycopg.Connection, qs: np.ndarray, filters: Filters
) -> tuple[dict[str, float], dict[str, list[list[str]]]]:
    """Median latency of vk.search with each filter, and the rows found; the four searches of
    each query in rotating order."""
    latency: dict[str, list[float]] = {name: [] for name in filters}
    found: dict[str, list[list[str]]] = {name: [] for name in filters}
    params = {name: None if f is None else Jsonb(f) for name, f in filters.items()}
    for _ in range(5):  # warm: psycopg prepares a statement after five runs
        for p in params.values():
            _timed(conn, SEARCH, (qs[0], p))
    names = list(filters)
    for i, q in enumerate(qs):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            took, rows = _timed(conn, SEARCH, (q, params[name]))
            latency[name].append(took)
            found[name].append(rows)
    return {name: statistics.median(seconds) for name, seconds in latency.items()}, found


def _probe_ms(conn: psycopg.Connection, c_id: int, m_id: int, f: dict[str, int], bound: int) -> float:
    """Median time of the count vk._nearest runs before every filtered search to pick its path
    (the same statement, sent by hand; the GIN index on metadata, then the heap for the ids)."""
    sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM vk.embeddings e WHERE e.collection_id = {c_id} "
        f"AND e.model_id = {m_id} AND e.metadata @> %s LIMIT {bound}) x"
    )
    return round(statistics.median(_timed(conn, sql, (Jsonb(f),))[0] for _ in range(50)) * 1000, 3)


def run(url: str, *, vectors: int = 100_000, queries: int = 100, seed: int = 13) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((200, DIM)).astype(np.float32)
    filters: Filters = {"none": None} | {key: {key: 0} for key in MODULI}
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        c_id, m_id, build = _build(conn, _clustered(vectors, rng, centroids))
        qs = _clustered(queries, rng, centroids)
        bound = _one(conn, "SELECT vk._exact_bound(%s)", (K,))
        median, found = _pass(conn, qs, filters)
        probe = {key: _probe_ms(conn, c_id, m_id, {key: 0}, bound) for key in MODULI}
        exact = {name: _exact(conn, c_id, m_id, qs, f) for name, f in filters.items()}
        matching = {
            key: _one(
                conn,
                "SELECT count(*) FROM vk.embeddings WHERE collection_id = %s AND metadata @> %s",
                (c_id, Jsonb({key: 0})),
            )
            for key in MODULI
        }
        # The load left fresh entries in the GIN index's pending list (fastupdate),
        # which every lookup reads in full until VACUUM (or gin_pending_list_limit)
        # moves them into the index; a table that workers keep writing to always
        # has some. Measured again without them.
        conn.execute("VACUUM vk.embeddings")
        vacuumed, _ = _pass(conn, qs, filters)
        probe_vacuumed = {key: _probe_ms(conn, c_id, m_id, {key: 0}, bound) for key in MODULI}
        # Filters that match nothing (revision 0022): a typo in the key and a number given as a
        # string get a notice, which reads the rows again to say why; a right key and type with a
        # value no row has says nothing. Side by side with the unfiltered search.
        unfiltered: Filters = {"none": None}
        careless, careless_found = _pass(conn, qs[:20], unfiltered | CARELESS)

        iterative, pgvector = conn.execute(
            "SELECT vk._iterative_scans(), extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()  # type: ignore[misc]
    # pgvector 0.7: the plain index scan's ef_search nearest, kept when they match; exact when fewer than k do.
    index_path = "iterative index scan" if iterative else "index scan, then exact if fewer than k match"
    figures: dict[str, Any] = {"vectors": vectors, "queries": queries, **build, "exact_bound": bound}
    figures["pgvector"] = pgvector
    figures["unfiltered_median_ms"] = round(median["none"] * 1000, 3)
    figures["unfiltered_recall_at_10"] = _recall(found["none"], exact["none"])
    for name, modulus in MODULI.items():
        counts = [len(r) for r in found[name]]
        # What filtering the unfiltered top 10 afterwards would have left.
        post = [sum(int(pk) % modulus == 0 for pk in r) for r in found["none"]]
        figures |= {
            f"{name}_matching_rows": matching[name],
            f"{name}_path": "exact" if matching[name] < bound else index_path,
            f"{name}_rows_min": min(counts),
            f"{name}_recall_at_10": _recall(found[name], exact[name]),
            f"{name}_median_ms": round(median[name] * 1000, 3),
            f"{name}_over_unfiltered": round(median[name] / median["none"], 3),
            f"{name}_probe_ms": probe[name],
            f"{name}_post_filter_rows_mean": round(statistics.fmean(post), 2),
        }
    figures["after_vacuum_unfiltered_median_ms"] = round(vacuumed["none"] * 1000, 3)
    for name in MODULI:
        figures |= {
            f"after_vacuum_{name}_median_ms": round(vacuumed[name] * 1000, 3),
            f"after_vacuum_{name}_over_unfiltered": round(vacuumed[name] / vacuumed["none"], 3),
            f"after_vacuum_{name}_probe_ms": probe_vacuumed[name],
        }
    for name in CARELESS:
        assert all(rows == [] for rows in careless_found[name]), name
        figures |= {
            f"empty_{name}_median_ms": round(careless[name] * 1000, 3),
            f"empty_{name}_over_unfiltered": round(careless[name] / careless["none"], 3),
        }
    return figures


def _recall(found: list[list[str]], exact: list[set[str]]) -> float:
    return round(float(np.mean([len(set(f) & e) / K for f, e in zip(found, exact, strict=True)])), 4)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.filters", description=__doc__)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    with bench_database() as url:
        print(json.dumps(run(url, vectors=args.vectors, queries=args.queries), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
