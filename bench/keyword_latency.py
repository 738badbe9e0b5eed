"""Keyword and hybrid search latency as the collection grows, against vector search's.

For each size N (default 10,000 and 100,000): collection "documents" (minilm@1) filled with N rows
written straight into vk.embeddings (binary COPY, as a worker would have written them: text, offsets,
sha256), their text the paragraphs of bench/relevance.py's two labelled sets in turn (each with a
row number appended, so no two are equal), their vectors random unit vectors (latency only, not
relevance); the HNSW index built once after the load (vk.build_index_v1), the BM25 statistics kept
by the load's own trigger, then folded (vk.compact_keyword_stats_v1) and the tables vacuumed, as
autovacuum would leave them. A worker (`vectorkeep worker`) encodes each query once; every timed
call then takes its vector from the cache, vector and hybrid search alike. For queries of common
words (they match a large share of the rows) and rarer ones:

- keyword: vk.hybrid_search('documents', query, 10, vector_weight => 0): the BM25 list alone;
- vector:  vk.search('documents', query, 10);
- hybrid:  vk.hybrid_search('documents', query, 10): both lists, fused (the defaults);
- filtered: the same with filter {"shelf": "3"}, which one row in seven passes;

median and p99 of each (REPEAT calls per query), the rows each query matches, and the ratios to
vector search (goal at 100,000 rows, common words: hybrid p50 <= 2x, p99 <= 3x). How keyword
latency grows from the first size to the last shows whether it follows the matches.

With --texts docstrings the rows are instead distinct texts: every docstring of at least 8 words
of the Python files this interpreter ships and has installed (standard library and site-packages,
read with ast, nothing imported; about 100,000 here), in file order, so that no two rows are copies
of each other as the cycled texts are (40 copies of each at 100,000 rows, whose equal scores make
the 50th best row hard to separate from the rest).

    python -m bench.keyword_latency [--rows 10000 100000] [--repeat 5] [--texts sets|docstrings]
                                                                        (JSON on stdout)
"""

import argparse
import ast
import hashlib
import json
import statistics
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Jsonb

from bench.database import bench_database
from bench.relevance import pydoc_set, stdlib_set
from bench.text_queries import running_worker

DIM = 384
STATEMENTS = {
    "keyword": "SELECT pk FROM vk.hybrid_search('documents', %s, 10, vector_weight => 0)",
    "vector": "SELECT pk FROM vk.search('documents', %s::text, 10)",
    "hybrid": "SELECT pk FROM vk.hybrid_search('documents', %s, 10)",
    "filtered": "SELECT pk FROM vk.hybrid_search('documents', %s, 10, '{\"shelf\": \"3\"}')",
}
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
    columns = (
        "collection_id, pk, model_id, chunk, start_char, end_char, embedding, body, text_sha256, truncated, metadata"
    )
    start = time.perf_counter()
    with conn.cursor() as cur, cur.copy(f"COPY vk.embeddings ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "text", "int8", "int4", "int4", "int4", "vector", "text", "bytea", "bool", "jsonb"])
        for i in range(rows):
            body = f"{texts[i % len(texts)]} (row {i})"
            v = rng.standard_normal(DIM).astype(np.float32)
            digest = hashlib.sha256(body.encode()).digest()
            metadata = Jsonb({"shelf": str(i % 7)})  # what a filter of one shelf in seven picks
            copy.write_row((c_id, str(i), m_id, 0, 0, len(body), v / np.linalg.norm(v), body, digest, False, metadata))
    load_s = time.perf_counter() - start
    conn.execute("SET maintenance_work_mem = '512MB'")
    start = time.perf_counter()
    conn.execute("SELECT vk.build_index_v1(%s, %s)", (c_id, m_id))
    index_s = time.perf_counter() - start
    # As autovacuum would leave them some time after a bulk load: counts folded, visibility known.
    start = time.perf_counter()
    conn.execute("SELECT vk.compact_keyword_stats_v1()")
    conn.execute("VACUUM (ANALYZE) vk.embeddings, vk.keyword_postings, vk.keyword_stats")
    return {
        "load_s": round(load_s, 1),
        "hnsw_build_s": round(index_s, 1),
        "fold_vacuum_s": round(time.perf_counter() - start, 1),
    }


def _timed(conn: psycopg.Connection, statement: str, params: tuple[Any, ...], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        conn.execute(statement, params).fetchall()
        times.append((time.perf_counter() - start) * 1000)
    return times


def measure(conn: psycopg.Connection, repeat: int) -> dict[str, Any]:
    c_id, _ = _ids(conn)
    out: dict[str, Any] = {}
    for kind, queries in QUERIES.items():
        times: dict[str, list[float]] = {name: [] for name in STATEMENTS}
        matches = []
        for query in queries:
            matches.append(
                conn.execute(
                    "SELECT count(*) FROM vk.embeddings e WHERE e.collection_id = %s "
                    "AND to_tsvector('english', e.body) @@ vk._any_word('english', %s)",
                    (c_id, query),
                ).fetchone()[0]  # type: ignore[index]
            )
            # The query's vector from the worker once, then from the cache, for both searches alike.
            conn.execute("SELECT vk.embed('minilm@1', %s)", (query,))
            for name, statement in STATEMENTS.items():
                times[name] += _timed(conn, statement, (query,), repeat)
        p50 = {name: statistics.median(t) for name, t in times.items()}
        p99 = {name: float(np.percentile(t, 99)) for name, t in times.items()}
        out[kind] = {
            "matches": matches,
            **{f"{name}_p50_ms": round(p50[name], 2) for name in times},
            **{f"{name}_p99_ms": round(p99[name], 2) for name in times},
            "keyword_p50_over_vector_p50": round(p50["keyword"] / p50["vector"], 2),
            "hybrid_p50_over_vector_p50": round(p50["hybrid"] / p50["vector"], 2),
            "hybrid_p99_over_vector_p99": round(p99["hybrid"] / p99["vector"], 2),
            "filtered_p50_over_vector_p50": round(p50["filtered"] / p50["vector"], 2),
        }
    return out


def docstrings() -> list[str]:
    """Every distinct docstring of at least 8 words (whitespace folded) of the standard library's
    and the installed packages' Python files, in path order."""
    seen: dict[str, None] = {}
    roots = sorted({sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]})
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            try:
                tree = ast.parse(path.read_text(errors="replace"))
            except (SyntaxError, ValueError, OSError):
                continue  # a template or a file for another Python
            for node in ast.walk(tree):
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                    text = " ".join((ast.get_docstring(node) or "").split())
                    if len(text.split()) >= 8 and "\x00" not in text:
                        seen.setdefault(text)
    return list(seen)


def run(sizes: list[int], repeat: int, corpus: str) -> dict[str, Any]:
    texts = docstrings() if corpus == "docstrings" else pydoc_set()[0] + stdlib_set()[0]
    result: dict[str, Any] = {"corpus": corpus, "texts": len(texts), "repeat": repeat, "sizes": {}}
    with bench_database() as url, running_worker(url), psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("SET vk.embed_timeout = '60s'")
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
                "hybrid_p50": round(s[last][kind]["hybrid_p50_ms"] / s[first][kind]["hybrid_p50_ms"], 1),
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
    parser.add_argument(
        "--texts",
        choices=["sets", "docstrings"],
        default="sets",
        help="the labelled sets' texts cycled, or distinct docstrings of the installed Python files",
    )
    args = parser.parse_args()
    print(json.dumps(run(sorted(args.rows), args.repeat, args.texts), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
