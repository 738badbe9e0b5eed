"""Relevance: nDCG@10 of keyword, vector and hybrid search on a labelled set that ships with Python.

The set, built from pydoc_data.topics.topics (topic -> help text; the same
text for a given Python version, offline, PSF-2.0):

- each topic's text starts with a title line underlined by a line of '*'
  (e.g. 'The "assert" statement'); the rest is split on blank lines into
  paragraphs, whitespace collapsed to single spaces; paragraphs shorter than
  80 characters (sub-headings, short grammar lines) are left out;
- documents: the distinct paragraphs (several topics contain the same
  paragraph: a section's topic holds its subsections' text), one row each in
  pydoc(id, topic, body), topic being the first of its topics in sorted
  order, ids in (topic, position) order;
- queries: the topic titles, each title once; a title that several topics
  share ('The "if" statement') is no query;
- relevant to a query: every document that is a paragraph of its topic
  (binary relevance; a shared paragraph is relevant to each of its topics).

Attached with vk.attach('pydoc', 'id', 'body') (MiniLM, english keyword
configuration, no chunking: the defaults), drained by a worker, then each
query through:

- keyword: vk.hybrid_search('pydoc', title, 10, vector_weight => 0);
- vector:  vk.search('pydoc', title, 10) (the title encoded by a worker);
- hybrid:  vk.hybrid_search('pydoc', title, 10) (equal weights).

nDCG@10 = DCG@10 / ideal DCG@10, DCG = sum of 1 / log2(rank + 1) over the
relevant results in the first 10; mean over the queries. Nothing is tuned on
this set: every setting is vectorkeep's default.

    python -m bench.relevance
"""

import argparse
import json
import math
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from bench.database import bench_database
from bench.text_queries import running_worker
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.worker import Worker, WorkerSettings

K = 10
MIN_CHARS = 80
RANKINGS = {
    "keyword": "SELECT pk FROM vk.hybrid_search('pydoc', %s, 10, vector_weight => 0)",
    "vector": "SELECT pk FROM vk.search('pydoc', %s::text, 10)",
    "hybrid": "SELECT pk FROM vk.hybrid_search('pydoc', %s, 10)",
}


def labelled_set() -> tuple[list[tuple[str, str]], dict[str, set[int]]]:
    """Documents as (topic, body), ids being their positions; queries as title -> ids of relevant documents."""
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
    documents = [(min(topics_of[body]), body) for body in order]
    shared = Counter(titles.values())
    queries: dict[str, set[int]] = {}
    for topic, title in titles.items():
        relevant = {i for i, body in enumerate(order) if topic in topics_of[body]}
        if shared[title] == 1 and relevant:
            queries[title] = relevant
    return documents, queries


def ndcg(ranked: list[int], relevant: set[int], k: int = K) -> float:
    dcg = sum(1 / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]) if doc in relevant)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return dcg / ideal


def _load(url: str, documents: list[tuple[str, str]]) -> int:
    with connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE pydoc (id int PRIMARY KEY, topic text, body text)")
        with conn.cursor() as cur, cur.copy("COPY pydoc (id, topic, body) FROM STDIN") as copy:
            for i, (topic, body) in enumerate(documents):
                copy.write_row((i, topic, body))
        conn.execute("SELECT vk.attach('pydoc', 'id', 'body')")
    return Worker(url, WorkerSettings(batch_size=64), encoders=EncoderCache()).run(until_idle=True).embedded


def run(url: str) -> dict[str, Any]:
    documents, queries = labelled_set()
    embedded = _load(url, documents)
    scores: dict[str, list[float]] = {name: [] for name in RANKINGS}
    with running_worker(url), connect(url, autocommit=True) as conn:
        for title, relevant in queries.items():
            for name, sql in RANKINGS.items():
                ranked = [int(r[0]) for r in conn.execute(sql, (title,)).fetchall()]
                scores[name].append(ndcg(ranked, relevant))
    mean = {name: round(float(np.mean(s)), 4) for name, s in scores.items()}
    return {
        "queries": len(queries),
        "documents": len(documents),
        "embedded": embedded,
        "relevant_per_query_median": float(np.median([len(r) for r in queries.values()])),
        **{f"{name}_ndcg_at_10": value for name, value in mean.items()},
        "hybrid_over_best_single": round(mean["hybrid"] / max(mean["keyword"], mean["vector"]), 3),
        # Per query: which list the hybrid beats, ties or trails (the mean hides it).
        "hybrid_vs_best_single_per_query": dict(
            Counter(
                "better" if h > max(k, v) + 1e-9 else "worse" if h < max(k, v) - 1e-9 else "equal"
                for k, v, h in zip(scores["keyword"], scores["vector"], scores["hybrid"], strict=True)
            )
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relevance", description=__doc__)
    parser.parse_args()
    with bench_database() as url:
        print(json.dumps(run(url), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
