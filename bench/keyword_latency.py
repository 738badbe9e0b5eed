"""Keyword search latency as the collection grows: does it follow the matches it ranks, or their square?

For each size N (default 10,000 and 100,000): collection "documents" (minilm@1) filled with N rows
written straight into vk.embeddings (binary COPY, as a worker would have written them: text, offsets,
sha256), their text the paragraphs of bench/relevance.py's two labelled sets in turn (each with a
row number appended, so no two are equal), their vectors random unit vectors (only the keyword list is
measured against the vector list's latency, not its relevance); the HNSW index built once after the
load (vk.build_index_v1), the keyword GIN index kept up by the load. Then, for queries of common
words (they match a large share of the rows) and rarer ones:

- keyword: vk.hybrid_search('documents', query, 10, vector_weight => 0): the keyword list alone, no
  worker needed;
- vector:  vk.search('documents', <a random unit vector>, 10);

median and p99 of each (REPEAT calls per query), the rows each query matches, and keyword p50 /
vector p50. Latency near linear in the matches is the goal; quadratic growth shows as a ratio of
times far above the ratio of matches.

    python -m bench.keyword_latency [--rows 10000 100000] [--repeat 5]    (JSON on stdout)
"""

import argparse
import hashlib
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from bench.database import bench_database
from bench.relevance import pydoc_set, stdlib_set

DIM = 384
QUERIES = {
    "common": [
        "the function returns a value",
        "how to use the object and its attributes",
        "if the file is not found an error is raised",
        "the default value is used when none is given",
    ],
    "rare": ["epoll sizehint", "base85 padding", "reprlib recursion limit", "quopri quoted printable"],
}


def _ids(conn: psycopg.Connection) -> tuple[int, int]:
    row = conn.execute("SELECT vk.collection_id('documents'), (vk.model('minilm@1')).id").fetchone()
    assert row is not None
    return row[0], row[1]


def load(conn: psycopg.Connection, rows: int, texts: list[str]) -> dict[str, float]:
    """rows rows of "documents", replacing what it held; seconds of the load and of the HNSW build."""
    c_id, m_id = _ids(conn)
    conn.execute("DELETE FROM vk.embeddings WHERE collection_id = %s", (c_id,))
    index = conn.execute("SELECT vk._hnsw_index_name(%s, %s)", (c_id, m_id)).fetchone()[0]  # type: ignore[index]
    conn.execute(sql.SQL("DROP INDEX IF EXISTS vk.{}").format(sql.Identifier(index)))
    rng = np.random.default_rng(7)
    columns = "collection_id, pk, model_id, chunk, start_char, end_char, embedding, body, text_sha256, truncated"
    start = time.perf_counter()
    with conn.cursor() as cur, cur.copy(f"COPY vk.embeddings ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "text", "int8", "int4", "int4", "int4", "vector", "text", "bytea", "bool"])
        for i in range(rows):
            body = f"{texts[i % len(texts)]} (row {i})"
            v = rng.standard_normal(DIM).astype(np.float32)
            digest = hashlib.sha256(body.encode()).digest()
            copy.write_row((c_id, str(i), m_id, 0, 0, len(body), v / np.linalg.norm(v), body, digest, False))
    load_s = time.perf_counter() - start
    conn.execute("SET maintenance_work_mem = '512MB'")
    start = time.perf_counter()
    conn.execute("SELECT vk.build_index_v1(%s, %s)", (c_id, m_id))
    index_s = time.perf_counter() - start
    conn.execute("ANALYZE vk.embeddings")
    return {"load_s": round(load_s, 1), "hnsw_build_s": round(index_s, 1)}


def _timed(conn: psycopg.Connection, statement: str, params: tuple[Any, ...], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        conn.execute(statement, params).fetchall()
        times.append((time.perf_counter() - start) * 1000)
    return times


def measure(conn: psycopg.Connection, repeat: int) -> dict[str, Any]:
    c_id, _ = _ids(conn)
    rng = np.random.default_rng(11)
    out: dict[str, Any] = {}
    for kind, queries in QUERIES.items():
        keyword: list[float] = []
        vector: list[float] = []
        matches = []
        for query in queries:
            matches.append(
                conn.execute(
                    "SELECT count(*) FROM vk.embeddings e WHERE e.collection_id = %s "
                    "AND to_tsvector('english', e.body) @@ vk._any_word('english', %s)",
                    (c_id, query),
                ).fetchone()[0]  # type: ignore[index]
            )
            keyword += _timed(
                conn, "SELECT pk FROM vk.hybrid_search('documents', %s, 10, vector_weight => 0)", (query,), repeat
            )
            v = rng.standard_normal(DIM).astype(np.float32)
            vector += _timed(conn, "SELECT pk FROM vk.search('documents', %s, 10)", (v / np.linalg.norm(v),), repeat)
        out[kind] = {
            "matches": matches,
            "keyword_p50_ms": round(statistics.median(keyword), 2),
            "keyword_p99_ms": round(float(np.percentile(keyword, 99)), 2),
            "vector_p50_ms": round(statistics.median(vector), 2),
            "vector_p99_ms": round(float(np.percentile(vector, 99)), 2),
            "keyword_p50_over_vector_p50": round(statistics.median(keyword) / statistics.median(vector), 2),
        }
    return out


def run(sizes: list[int], repeat: int) -> dict[str, Any]:
    texts = pydoc_set()[0] + stdlib_set()[0]
    result: dict[str, Any] = {"texts": len(texts), "repeat": repeat, "sizes": {}}
    with bench_database() as url, psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        for rows in sizes:
            print(f"keyword_latency: {rows:,} rows", file=sys.stderr)
            result["sizes"][str(rows)] = {**load(conn, rows, texts), **measure(conn, repeat)}
    first, last = str(sizes[0]), str(sizes[-1])
    if first != last:
        s = result["sizes"]
        result["growth"] = {
            kind: {
                "rows": round(int(last) / int(first), 1),
                "matches": round(sum(s[last][kind]["matches"]) / max(sum(s[first][kind]["matches"]), 1), 1),
                "keyword_p50": round(s[last][kind]["keyword_p50_ms"] / s[first][kind]["keyword_p50_ms"], 1),
            }
            for kind in QUERIES
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.keyword_latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000], help="collection sizes")
    parser.add_argument("--repeat", type=int, default=5, help="calls per query")
    args = parser.parse_args()
    print(json.dumps(run(sorted(args.rows), args.repeat), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
