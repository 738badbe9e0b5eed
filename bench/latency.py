"""Latency: one INSERT at low load → its vector committed, p50/p95/p99.

A worker runs in a thread of this process, waiting on LISTEN as in
production. The client inserts one row (autocommit), then waits for a
notification that a bench-only trigger on vk.embeddings sends from the
worker's transaction; PostgreSQL delivers it at that transaction's commit, so
the time measured ends when the vector is committed and visible. The client
pauses between inserts so that each row meets an idle worker (low load).

Reported with all-MiniLM-L6-v2 (total, and total minus the encode time the
worker spent on that row's batch) and with the no-op encoder (nothing but the
queue's own path).
"""

import statistics
import threading
import time
from typing import Any

import numpy as np
import psycopg

from bench.ingest import NOOP_KIND, NoopEncoder, texts
from vectorkeep.db.connect import connect
from vectorkeep.db.records import ModelVersion
from vectorkeep.workers import kinds
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.worker import Worker, WorkerSettings

# Bench-only: tells the client, at the worker's commit, which row got its vector.
DONE_TRIGGER = """
CREATE FUNCTION public.bench_vector_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bench_done', NEW.pk);
    RETURN NULL;
END $$;
CREATE TRIGGER bench_vector_done AFTER INSERT OR UPDATE ON vk.embeddings
    FOR EACH ROW EXECUTE FUNCTION public.bench_vector_done();
"""


class TimedEncoder:
    """Wraps an encoder; remembers how long each text's batch took to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.seconds: dict[str, float] = {}

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, batch: list[str]) -> np.ndarray:
        start = time.perf_counter()
        out = self.inner.encode(batch)
        took = time.perf_counter() - start
        for text in batch:
            self.seconds[text] = took
        return out


class TimedEncoders(EncoderCache):
    def __init__(self) -> None:
        super().__init__()
        self.timed: dict[int, TimedEncoder] = {}

    def get(self, conn: psycopg.Connection, model: ModelVersion) -> Encoder:
        inner = super().get(conn, model)
        if model.id not in self.timed or self.timed[model.id].inner is not inner:
            self.timed[model.id] = TimedEncoder(inner)
        return self.timed[model.id]


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {f"p{p}": round(float(np.percentile(ms, p)), 2) for p in (50, 95, 99)} | {
        "mean": round(statistics.fmean(ms), 2)
    }


def _measure(url: str, table: str, model: str, bodies: list[str], pause: float) -> dict[str, Any]:
    encoders = TimedEncoders()
    with connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)")
        conn.execute("SELECT vk.attach(%s, 'id', 'body', %s)", (table, model))
    worker = Worker(url, WorkerSettings(batch_size=64), encoders=encoders)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    total: list[float] = []
    encode: list[float] = []
    try:
        with connect(url, autocommit=True) as listener, connect(url, autocommit=True) as conn:
            listener.execute("LISTEN bench_done")
            warmup = 5  # the first batches load the model and plan the worker's statements
            for i, body in enumerate(bodies):
                start = time.perf_counter()
                pk = conn.execute(f"INSERT INTO {table} (body) VALUES (%s) RETURNING id", (body,)).fetchone()
                assert pk is not None
                for note in listener.notifies(timeout=30):
                    if note.payload == str(pk[0]):
                        break
                else:
                    raise RuntimeError(f"row {pk[0]} got no vector within 30 s")
                took = time.perf_counter() - start
                if i >= warmup:
                    total.append(took)
                    encode.append(sum(t.seconds.get(body, 0.0) for t in encoders.timed.values()))
                time.sleep(pause)
    finally:
        worker.stop()
        thread.join()
    excluding = [t - e for t, e in zip(total, encode, strict=True)]
    return {
        "inserts": len(total),
        "total_ms": _percentiles(total),
        "encode_ms": _percentiles(encode),
        "excluding_encode_ms": _percentiles(excluding),
    }


def run(url: str, *, inserts: int = 200, pause: float = 0.05) -> dict[str, Any]:
    kinds.EXTRA_LOADERS["noop"] = NoopEncoder
    with connect(url, autocommit=True) as conn:
        conn.execute(DONE_TRIGGER)
        conn.execute(NOOP_KIND)
        conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('noop', 1, 'noop', 384)")
    bodies = texts(inserts + 5)
    minilm = _measure(url, "bench_latency_minilm", "minilm@1", bodies, pause)
    noop = _measure(url, "bench_latency_noop", "noop@1", bodies, pause)
    return {
        "inserts": minilm["inserts"],
        "pause_between_inserts_s": pause,
        "minilm": minilm,
        "noop": noop,
        "p50_excluding_encode_ms": minilm["excluding_encode_ms"]["p50"],
        "p99_excluding_encode_ms": minilm["excluding_encode_ms"]["p99"],
        "noop_p50_ms": noop["total_ms"]["p50"],
        "noop_p99_ms": noop["total_ms"]["p99"],
    }
