"""Relevance: keyword, vector and hybrid search on labelled sets built offline from what ships with Python.

Two sets of different kinds, the same text for a given Python version (PSF-2.0):

pydoc, from pydoc_data.topics.topics (topic -> help text): long queries of a topic,
many relevant paragraphs each.

- each topic's text starts with a title line underlined by a line of '*'
  (e.g. 'The "assert" statement'); the rest is split on blank lines into
  paragraphs, whitespace collapsed to single spaces; paragraphs shorter than
  80 characters (sub-headings, short grammar lines) are left out;
- documents: the distinct paragraphs (several topics contain the same
  paragraph: a section's topic holds its subsections' text), ids in (topic,
  position) order;
- queries: the topic titles, each title once; a title that several topics
  share ('The "if" statement') is no query;
- relevant to a query: every document that is a paragraph of its topic
  (binary relevance; a shared paragraph is relevant to each of its topics).

stdlib, from the docstrings of the standard library's public functions and
classes (STDLIB_MODULES, imported here): a one-sentence question, one relevant
passage each.

- for each public name of each module whose object is a function or class
  defined in that module (or its C accelerator, `_json` for `json`), its
  docstring (inspect.getdoc) split at its first blank line: the summary (the
  first paragraph) and the body (the rest), whitespace collapsed;
- left out: summaries that are signatures ('select.epoll(sizehint=-1, ...)',
  '... -> ...') or shorter than 20 characters, bodies shorter than 80, and
  every entry whose summary or body another entry shares;
- documents: the bodies, in (module, name) order; queries: the summaries;
  relevant to a query: its own body only (the summary itself is not in it).

Each set is its own table (id, body), attached with vk.attach(table, 'id',
'body') (MiniLM, english keyword configuration, no chunking: the defaults),
drained by a worker; then each query through

- keyword_old: revision 0019's keyword ranking (ts_rank_cd with an idf per
  query word over the GIN index's matches; what Citus still uses), its query
  as vk._keyword_sql writes it;
- keyword: BM25, vk.hybrid_search(table, query, k, vector_weight => 0);
- vector:  vk.search(table, query, k) (the query encoded by a worker);
- rrf, convex: vk.hybrid_search with that fusion and equal weights;
- hybrid:  vk.hybrid_search(table, query, k) (vectorkeep's defaults);

at k = 10 (nDCG@10 and MRR@10, binary relevance, and the latency of each
call) and at k = 100 (recall@100). nDCG@10 = DCG@10 / ideal DCG@10, DCG = sum
of 1 / log2(rank + 1) over the relevant results in the first 10; MRR@10 = 1 /
the rank of the first relevant result in the first 10 (0 if none); recall@100
= relevant found in the first 100 / relevant (at most 100). Means over the
queries.

The defaults were chosen on pydoc alone (--sweep pydoc: every fusion with the
vector share of the weight from 0 to 1 by tenths; the best nDCG@10); stdlib
chose nothing. "tuned": vk.tune_hybrid given each set's first 20 queries with
their labels, as a user would give a few, and hybrid search with what it chose
measured on the set's other queries, beside each list alone on those.

    python -m bench.relevance [--set pydoc|stdlib]
"""

import argparse
import importlib
import inspect
import json
import math
import re
import statistics
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from bench.database import bench_database
from bench.text_queries import running_worker
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.worker import Worker, WorkerSettings

K = 10
RECALL_K = 100
TUNE = 20  # labelled queries given to vk.tune_hybrid (the first of the set)
MIN_CHARS = 80
RANKINGS = {
    # Revision 0019's keyword ranking (idf-weighted ts_rank_cd over the GIN index's matches), which
    # Citus still uses: its query as vk._keyword_sql writes it ({keyword_sql}, filled in by _old_keyword).
    "keyword_old": "{keyword_sql}",
    "keyword": "SELECT pk FROM vk.hybrid_search('{table}', %s, %s, vector_weight => 0)",
    "vector": "SELECT pk FROM vk.search('{table}', %s::text, %s)",
    "rrf": "SELECT pk FROM vk.hybrid_search('{table}', %s, %s, keyword_weight => 1, vector_weight => 1, "
    "fusion => 'rrf')",
    "convex": "SELECT pk FROM vk.hybrid_search('{table}', %s, %s, keyword_weight => 1, vector_weight => 1, "
    "fusion => 'convex')",
    "hybrid": "SELECT pk FROM vk.hybrid_search('{table}', %s, %s)",
}
# The sweep the defaults were chosen from (on pydoc alone): each fusion with the vector list's share
# of the weight from 0 to 1 by tenths, nDCG@10.
SWEEP = (
    "SELECT pk FROM vk.hybrid_search('{table}', %s, %s, keyword_weight => {kw}, vector_weight => {vw}, "
    "fusion => '{fusion}')"
)

# Modules whose import does nothing else (no antigravity, no this); a fixed list, so the set is
# the same wherever this Python version runs.
# fmt: off
STDLIB_MODULES = (
    "abc", "argparse", "ast", "asyncio", "base64", "bisect", "binascii", "bz2", "calendar", "cmath", "codecs",
    "collections", "colorsys", "concurrent.futures", "configparser", "contextlib", "copy", "csv", "dataclasses",
    "datetime", "decimal", "difflib", "dis", "email.utils", "enum", "filecmp", "fnmatch", "fractions", "ftplib",
    "functools", "gc", "getpass", "gettext", "glob", "graphlib", "gzip", "hashlib", "heapq", "hmac", "html",
    "http.client", "http.cookies", "imaplib", "importlib", "inspect", "io", "ipaddress", "itertools", "json",
    "keyword", "linecache", "locale", "logging", "lzma", "mailbox", "math", "mimetypes", "mmap", "netrc",
    "numbers", "operator", "os", "os.path", "pathlib", "pickle", "pkgutil", "platform", "plistlib", "poplib",
    "pprint", "queue", "quopri", "random", "re", "reprlib", "sched", "secrets", "select", "selectors", "shelve",
    "shlex", "shutil", "signal", "smtplib", "socket", "sqlite3", "ssl", "stat", "statistics", "string", "struct",
    "subprocess", "sysconfig", "tarfile", "tempfile", "textwrap", "threading", "time", "timeit", "tokenize",
    "traceback", "types", "typing", "unicodedata", "urllib.parse", "urllib.request", "uuid", "warnings", "weakref",
    "xml.etree.ElementTree", "zipfile", "zlib",
)
# fmt: on

# documents (their ids are their positions), queries (query -> ids of the relevant documents)
LabelledSet = tuple[list[str], dict[str, set[int]]]


def pydoc_set() -> LabelledSet:
    from pydoc_data.topics import topics

    topics_of: dict[str, set[str]] = defaultdict(set)  # body -> the topics it is a paragraph of
    order: list[str] = []
    titles: dict[str, str] = {}
    for topic in sorted(topics):
        title, *blocks = topics[topic].split("\n\n")
        titles[topic] = title.split("\n")[0].strip()
        for block in blocks:
            body = " ".join(block.split())
            if len(body) >= MIN_CHARS:
                if body not in topics_of:
                    order.append(body)
                topics_of[body].add(topic)
    shared = Counter(titles.values())
    queries: dict[str, set[int]] = {}
    for topic, title in titles.items():
        relevant = {i for i, body in enumerate(order) if topic in topics_of[body]}
        if shared[title] == 1 and relevant:
            queries[title] = relevant
    return order, queries


def _documented(module_name: str) -> dict[str, tuple[str, str]]:
    """name -> (summary, body) of the module's public functions and classes with a docstring."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated modules still import
        module = importlib.import_module(module_name)
    found: dict[str, tuple[str, str]] = {}
    for attr in sorted(dir(module)):
        obj = getattr(module, attr)
        if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isbuiltin(obj) or inspect.isclass(obj)):
            continue
        home = (getattr(obj, "__module__", None) or "").lstrip("_").split(".")[0]
        doc = inspect.getdoc(obj)
        if home != module_name.split(".")[0] or not doc:  # re-exported from elsewhere, or undocumented
            continue
        first, _, rest = doc.strip().partition("\n\n")
        summary, body = " ".join(first.split()), " ".join(rest.split())
        if re.search(r"->|^[\w.]+\(", summary) or len(summary) < 20 or len(body) < MIN_CHARS:
            continue
        found[f"{module_name}.{attr}"] = (summary, body)
    return found


def stdlib_set() -> LabelledSet:
    entries = [entry for name in STDLIB_MODULES for entry in _documented(name).values()]
    summaries = Counter(summary for summary, _ in entries)
    bodies = Counter(body for _, body in entries)
    kept = [(s, b) for s, b in entries if summaries[s] == 1 and bodies[b] == 1]
    return [body for _, body in kept], {summary: {i} for i, (summary, _) in enumerate(kept)}


SETS: dict[str, Callable[[], LabelledSet]] = {"pydoc": pydoc_set, "stdlib": stdlib_set}


def ndcg(ranked: list[int], relevant: set[int], k: int = K) -> float:
    dcg = sum(1 / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]) if doc in relevant)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return dcg / ideal


def mrr(ranked: list[int], relevant: set[int], k: int = K) -> float:
    return next((1 / (rank + 1) for rank, doc in enumerate(ranked[:k]) if doc in relevant), 0.0)


def recall(ranked: list[int], relevant: set[int], k: int = RECALL_K) -> float:
    return len(set(ranked[:k]) & relevant) / min(k, len(relevant))


def _load(url: str, table: str, documents: list[str]) -> int:
    with connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, body text)")
        with conn.cursor() as cur, cur.copy(f"COPY {table} (id, body) FROM STDIN") as copy:
            for i, body in enumerate(documents):
                copy.write_row((i, body))
        conn.execute("SELECT vk.attach(%s, 'id', 'body')", (table,))
    return Worker(url, WorkerSettings(batch_size=64), encoders=EncoderCache()).run(until_idle=True).embedded


def _old_keyword(conn: Any, table: str) -> str:
    """Revision 0019's keyword query for the table's collection, its parameters as psycopg's (query, k)."""
    text = conn.execute(
        "SELECT vk._keyword_sql(c, vk._collection_model(c, NULL)) FROM vk._collection(%s) c", (table,)
    ).fetchone()[0]
    body = text.replace("$6", "q.text").replace("$5", "NULL::jsonb").replace("$4", "q.k")
    return f"SELECT o.pk FROM (SELECT %s::text AS text, %s::integer AS k) q, LATERAL ({body}) o ORDER BY o.rank"


def sweep(url: str, name: str) -> dict[str, float]:
    """nDCG@10 of every fusion and vector share on a set already loaded (how the defaults were chosen)."""
    _, queries = SETS[name]()
    out: dict[str, float] = {}
    with running_worker(url), connect(url, autocommit=True) as conn:
        conn.execute("SET vk.embed_timeout = '30s'")
        for fusion in ("convex", "rrf"):
            for tenth in range(11):
                vw = tenth / 10
                statement = SWEEP.format(table=name, kw=1 - vw, vw=vw, fusion=fusion)
                out[f"{fusion} vector {vw:.1f}"] = round(
                    float(
                        np.mean(
                            [
                                ndcg([int(r[0]) for r in conn.execute(statement, (q, K)).fetchall()], relevant)
                                for q, relevant in queries.items()
                            ]
                        )
                    ),
                    4,
                )
    return out


def measure(url: str, name: str) -> dict[str, Any]:
    documents, queries = SETS[name]()
    embedded = _load(url, name, documents)
    scores: dict[str, dict[str, list[float]]] = {r: defaultdict(list) for r in RANKINGS}
    with running_worker(url), connect(url, autocommit=True) as conn:
        conn.execute("SET vk.embed_timeout = '30s'")  # a loaded machine's worker may take more than 5 s
        old_keyword = _old_keyword(conn, name)
        for query, relevant in queries.items():
            for ranking, statement in RANKINGS.items():
                statement = statement.format(table=name, keyword_sql=old_keyword)
                start = time.perf_counter()
                top = [int(r[0]) for r in conn.execute(statement, (query, K)).fetchall()]
                scores[ranking]["ms"].append((time.perf_counter() - start) * 1000)
                scores[ranking]["ndcg_at_10"].append(ndcg(top, relevant))
                scores[ranking]["mrr_at_10"].append(mrr(top, relevant))
                deep = [int(r[0]) for r in conn.execute(statement, (query, RECALL_K)).fetchall()]
                scores[ranking]["recall_at_100"].append(recall(deep, relevant))
    out: dict[str, Any] = {
        "queries": len(queries),
        "documents": len(documents),
        "embedded": embedded,
        "relevant_per_query_median": float(np.median([len(r) for r in queries.values()])),
    }
    for ranking, by_metric in scores.items():
        out[ranking] = {
            **{m: round(float(np.mean(v)), 4) for m, v in by_metric.items() if m != "ms"},
            "median_ms": round(statistics.median(by_metric["ms"]), 2),
            "p99_ms": round(float(np.percentile(by_metric["ms"], 99)), 2),
        }
    best = max(out["keyword"]["ndcg_at_10"], out["vector"]["ndcg_at_10"])
    out["hybrid_over_best_single"] = round(out["hybrid"]["ndcg_at_10"] / best, 3)
    out["tuned"] = _tuned(url, name, queries, scores)
    # Per query: which list the hybrid beats, ties or trails (the mean hides it).
    out["hybrid_vs_best_single_per_query"] = dict(
        Counter(
            "better" if h > max(k, v) + 1e-9 else "worse" if h < max(k, v) - 1e-9 else "equal"
            for k, v, h in zip(
                scores["keyword"]["ndcg_at_10"],
                scores["vector"]["ndcg_at_10"],
                scores["hybrid"]["ndcg_at_10"],
                strict=True,
            )
        )
    )
    return out


def _tuned(
    url: str, name: str, queries: dict[str, set[int]], scores: dict[str, dict[str, list[float]]]
) -> dict[str, Any]:
    """vk.tune_hybrid fed the set's first TUNE queries, as a user would label a few; hybrid search with
    what it chose (the collection's settings now), against each list alone, on the other queries."""
    items = list(queries.items())
    labelled = [{"query": q, "relevant": [str(i) for i in sorted(r)]} for q, r in items[:TUNE]]
    statement = RANKINGS["hybrid"].format(table=name)
    with running_worker(url), connect(url, autocommit=True) as conn:
        conn.execute("SET vk.embed_timeout = '30s'")
        chosen = conn.execute(
            "SELECT fusion, keyword_weight, vector_weight, ndcg_at_10 FROM vk.tune_hybrid(%s, %s)",
            (name, Jsonb(labelled)),
        ).fetchone()
        assert chosen is not None
        tuned = [ndcg([int(r[0]) for r in conn.execute(statement, (q, K)).fetchall()], rel) for q, rel in items[TUNE:]]
    held_out = {r: float(np.mean(scores[r]["ndcg_at_10"][TUNE:])) for r in ("keyword", "vector", "hybrid")}
    return {
        "tuned_on_queries": TUNE,
        "chosen": {"fusion": chosen[0], "keyword_weight": chosen[1], "vector_weight": chosen[2]},
        "ndcg_at_10_on_those": round(chosen[3], 4),
        "held_out_queries": len(items) - TUNE,
        "held_out_ndcg_at_10": {
            "keyword": round(held_out["keyword"], 4),
            "vector": round(held_out["vector"], 4),
            "hybrid_defaults": round(held_out["hybrid"], 4),
            "hybrid_tuned": round(float(np.mean(tuned)), 4),
        },
        "tuned_over_best_single": round(float(np.mean(tuned)) / max(held_out["keyword"], held_out["vector"]), 3),
    }


def run(url: str, sets: tuple[str, ...] = tuple(SETS), sweep_sets: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every set in one database; hybrid_over_best_single is the lowest of the sets' (bench's goal: >= 1)."""
    result: dict[str, Any] = {name: measure(url, name) for name in sets}
    for name in sweep_sets:
        result[name]["sweep"] = sweep(url, name)
    result["hybrid_over_best_single"] = min(result[name]["hybrid_over_best_single"] for name in sets)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.relevance", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", choices=sorted(SETS), action="append", help="a labelled set (default: all)")
    parser.add_argument("--sweep", choices=sorted(SETS), action="append", help="sweep fusion and weights on this set")
    args = parser.parse_args()
    with bench_database() as url:
        print(json.dumps(run(url, tuple(args.set or SETS), tuple(args.sweep or ())), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
