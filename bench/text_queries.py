"""Text queries: vk.search with a text, against the application encoding the text itself.

~400 paragraphs of the sample corpus in vk.documents (MiniLM), a `vectorkeep
worker` process serving text queries (its text-query lane). For each of N
query texts never asked before (phrases of the corpus in a question, each
numbered so that no two are alike), side by side in one loop:

- miss:     vk.search('documents', text, 10): the bench's client waits while a
            worker encodes the text (loopback request, NOTIFY, the lane's
            encode, the answer through vk.embed_cache) and the search runs;
- baseline: the same text encoded by a warm MiniLM in this process, then
            vk.search('documents', vector, 10): what an application does today;
- hit:      the miss's text again, now answered from vk.embed_cache;
- vector:   vk.search with the baseline's vector alone (the hit's floor).

The two encoders (the worker's and this process's) share the machine's cores,
so they never run at once: every call waits for its answer before the next.
Both use torch's default thread count. The order of each pair alternates from
query to query (the hit always after its miss), so drift hits both sides.

    python -m bench.text_queries [--queries 100]
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from bench.database import bench_database
from bench.ingest import texts
from vectorkeep.db import registry
from vectorkeep.db.connect import connect
from vectorkeep.workers.corpus import paragraphs
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.worker import Worker, WorkerSettings

LANE_RUNNING = "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'vectorkeep interactive %')"
TEXT_SEARCH = "SELECT pk, distance FROM vk.search('documents', %s::text, 10)"
VECTOR_SEARCH = "SELECT pk, distance FROM vk.search('documents', %s::vector, 10)"
TEMPLATES = ("how do I {}", "what does {} mean", "why is {}", "an example of {}", "{} explained", "when should {}")


@contextmanager
def running_worker(url: str, *, model: str = "minilm@1", timeout: float = 120.0) -> Iterator[subprocess.Popen[bytes]]:
    """A `vectorkeep worker` process for this database, ready for text queries (yielded, for its pid); SIGTERM
    at the end.

    Ready means its text-query lane is connected and has answered a first
    text (the lane connects before it loads its encoders, so the first answer
    is what proves the model loaded).
    """
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "vectorkeep", "worker"],
            env={**os.environ, "VECTORKEEP_DATABASE_URL": url},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            _wait_until_ready(url, process, log, model, timeout)
            yield process
        finally:
            process.send_signal(signal.SIGTERM)  # finishes what it has in hand, then exits
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Any, model: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with connect(url, autocommit=True) as conn:
        while not _one(conn, LANE_RUNNING):
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                tail = log.read()[-4000:].decode(errors="replace")
                raise RuntimeError(f"the worker's text-query lane did not start (exit {process.poll()}):\n{tail}")
            time.sleep(0.2)
        # Long enough for the lane's first model load; a ready lane answers in milliseconds. (The schema may
        # refuse a setting over 60 s.)
        conn.execute("SELECT set_config('vk.embed_timeout', %s, false)", (f"{int(min(timeout, 60))}s",))
        conn.execute("SELECT vk.embed(%s, 'warm-up: is the worker ready?')", (model,))


def _one(conn: psycopg.Connection, sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def questions(n: int, seed: int = 11) -> list[str]:
    """n distinct short queries: a run of 3-7 words of a corpus paragraph in a question, numbered."""
    rng = random.Random(seed)
    corpus = [t for _, t in paragraphs()]
    out = []
    for i in range(n):
        words = [w.strip(".,;:()\"'").lower() for w in rng.choice(corpus).split()]
        words = [w for w in words if w.isalpha()] or ["python"]
        start = rng.randrange(max(1, len(words) - 7))
        phrase = " ".join(words[start : start + rng.randint(3, 7)])
        out.append(f"{rng.choice(TEMPLATES).format(phrase)} ({i + 1})")
    return out


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def _ms(seconds: list[float], p: int) -> float:
    return round(float(np.percentile(np.array(seconds) * 1000, p)), 2)


def _fetch(conn: psycopg.Connection, sql: str, param: Any) -> list[Any]:
    return conn.execute(sql, (param,)).fetchall()


def _encode_and_search(conn: psycopg.Connection, encoder: Encoder, text: str) -> tuple[float, Any, list[Any]]:
    """What an application does without text queries: encode, then search by vector (and the encode's time)."""
    took, vector = _timed(lambda: encoder.encode([text])[0])
    return took, vector, _fetch(conn, VECTOR_SEARCH, vector)


def _side_by_side(
    a: Callable[[], Any], b: Callable[[], Any], flip: bool
) -> tuple[tuple[float, Any], tuple[float, Any]]:
    """a and b timed one after the other (b first when flip), never at once; returned in (a, b) order."""
    if flip:
        second = _timed(b)
        return _timed(a), second
    first = _timed(a)
    return first, _timed(b)


def _load_documents(url: str, encoders: EncoderCache, rows: int) -> int:
    with (
        connect(url, autocommit=True) as conn,
        conn.cursor() as cur,
        cur.copy("COPY vk.documents (body) FROM STDIN") as copy,
    ):
        for body in texts(rows):
            copy.write_row((body,))
    return Worker(url, WorkerSettings(batch_size=64), encoders=encoders).run(until_idle=True).embedded


def run(url: str, *, queries: int = 100, documents: int = 400) -> dict[str, Any]:
    encoders = EncoderCache()
    with connect(url, autocommit=True) as conn:
        encoder = encoders.get(conn, registry.by_spec(conn, "minilm@1"))  # loaded before any timing
    embedded = _load_documents(url, encoders, documents)

    times: dict[str, list[float]] = {"miss": [], "baseline": [], "encode": [], "hit": [], "vector": []}
    same_results = 0
    with running_worker(url), connect(url, autocommit=True) as conn:
        register_vector(conn)
        # Warm both paths: the session's loopback connection, psycopg's prepared statements.
        for text in questions(8, seed=5):
            _fetch(conn, TEXT_SEARCH, f"warm-up {text}")
            _encode_and_search(conn, encoder, text)
        cached_before = _one(conn, "SELECT count(*) FROM vk.embed_cache")

        for i, text in enumerate(questions(queries)):
            (miss_s, miss_rows), (baseline_s, (encode_s, vector, _)) = _side_by_side(
                partial(_fetch, conn, TEXT_SEARCH, text), partial(_encode_and_search, conn, encoder, text), i % 2 == 1
            )
            # The hit always after its miss: the miss put the text's vector in the cache.
            (hit_s, _), (vector_s, vector_rows) = _side_by_side(
                partial(_fetch, conn, TEXT_SEARCH, text), partial(_fetch, conn, VECTOR_SEARCH, vector), i % 2 == 1
            )
            for key, value in zip(times, (miss_s, baseline_s, encode_s, hit_s, vector_s), strict=True):
                times[key].append(value)
            # The worker's vector and this process's: the same model on the same text.
            same_results += [r[0] for r in miss_rows] == [r[0] for r in vector_rows]
        cached = _one(conn, "SELECT count(*) FROM vk.embed_cache") - cached_before

    figures: dict[str, Any] = {"queries": queries, "documents": embedded}
    for key, seconds in times.items():
        figures[f"{key}_p50_ms"] = _ms(seconds, 50)
        figures[f"{key}_p95_ms"] = _ms(seconds, 95)
    return figures | {
        "miss_over_baseline_p50": round(figures["miss_p50_ms"] / figures["baseline_p50_ms"], 3),
        "miss_over_baseline_p95": round(figures["miss_p95_ms"] / figures["baseline_p95_ms"], 3),
        "miss_minus_baseline_p50_ms": round(figures["miss_p50_ms"] - figures["baseline_p50_ms"], 2),
        "hit_over_vector_p50": round(figures["hit_p50_ms"] / figures["vector_p50_ms"], 3),
        "hit_minus_vector_p50_ms": round(figures["hit_p50_ms"] - figures["vector_p50_ms"], 2),
        # One new cache entry per query: every miss was a miss (and every hit found it).
        "cache_entries_added": cached,
        "same_top_10_as_in_process_vector": f"{same_results}/{queries}",
        "torch_threads": _torch_threads(),
    }


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.text_queries", description=__doc__)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    with bench_database() as url:
        print(json.dumps(run(url, queries=args.queries), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
