"""Encoders behind an API: throughput against a provider's rate limit, isolation from a 429 storm,
and a provider down mid-backfill. Each provider is bench/embedding_server.py on 127.0.0.1, speaking
the OpenAI embeddings API, backed by all-MiniLM-L6-v2 in this process; the worker is the real
service (main loop, text-query lane, job runner) in a thread of this process, as `vectorkeep worker`
runs it.

1. Throughput. Provider A allows R requests a minute (a sliding 60 s window: more answers 429 with
   Retry-After); its version is registered with requests_per_minute = R and max_inputs = N (each
   request carries the probe sentence, so N - 1 texts). A backlog of rows outlasts two windows.
   Reported: requests answered in the two minutes from the first / 2R (the most the server admits).
2. A 429 storm on one version. Collection B embeds with provider B (healthy); A's provider answers
   every request 429 (Retry-After 1 s) while rows keep arriving in collection A. One INSERT into B at
   a time, the time until its vector is committed: p50/p95 idle (no storm) and during the storm.
   Also: A's rows dead (target 0).
3. Provider down mid-backfill. A backlog of A's rows; when about half are embedded, A's server stops
   (connection refused) for --outage seconds, then comes back. Reported: rows lost and dead (target 0),
   and the seconds from its return to the last vector.

    python -m bench.api_encoders [--rpm 60] [--inputs 8] [--samples 30] [--outage 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from bench.database import bench_database
from bench.embedding_server import EmbeddingServer, status
from vectorkeep.app import models
from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.encoders import load_encoder
from vectorkeep.workers.families.text.api import forget_providers
from vectorkeep.workers.families.text.sentence_transformers import MINILM
from vectorkeep.workers.service import Service

MODEL = "text-embedding-test"
WINDOWS = 2  # minutes of the throughput part measured


def _one(conn: psycopg.Connection, sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


@contextmanager
def _service(url: str) -> Iterator[Service]:
    service = Service(url)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.stop()
        thread.join(timeout=60)


def _register(url: str, name: str, server: EmbeddingServer, **params: Any) -> ModelVersion:
    return models.register_encoder(
        url,
        name,
        kind="openai",
        params={"model": MODEL, "base_url": server.url + "/v1", "api_key_env": "", **params},
    )


def _collection(conn: psycopg.Connection, table: str, model: str) -> None:
    conn.execute(f"CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL)")
    conn.execute("SELECT vk.attach(%s, 'id', 'body', %s)", (table, model))


def _embedded(conn: psycopg.Connection, table: str) -> int:
    return int(
        _one(conn, "SELECT count(DISTINCT pk) FROM vk.embeddings WHERE collection_id = vk.collection_id(%s)", (table,))
    )


def _dead(conn: psycopg.Connection, table: str) -> int:
    return int(
        _one(conn, "SELECT count(*) FROM vk.queue WHERE dead AND collection_id = vk.collection_id(%s)", (table,))
    )


def _fill(conn: psycopg.Connection, table: str, n: int, tag: str) -> None:
    conn.execute(
        f"INSERT INTO {table} (body) SELECT %s || ' row ' || i || ' about queues, workers and vectors' "
        "FROM generate_series(1, %s) i",
        (tag, n),
    )


def _wait(condition: Any, timeout: float, poll: float = 0.05) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not done after {timeout:.0f}s")
        time.sleep(poll)
    return time.monotonic() - start


def throughput(url: str, encode: Any, rpm: int, inputs: int) -> dict[str, Any]:
    with EmbeddingServer(encode, requests_per_minute=rpm) as server, psycopg.connect(url, autocommit=True) as conn:
        _register(url, "api-throughput", server, requests_per_minute=rpm, max_inputs=inputs)
        _collection(conn, "bench_throughput", "api-throughput@1")
        per_request = inputs - 1
        rows = (WINDOWS * rpm + rpm // 2) * per_request  # a backlog that outlasts the windows measured
        server.reset_counters()
        _fill(conn, "bench_throughput", rows, "throughput")
        with _service(url):
            seconds = _wait(lambda: _embedded(conn, "bench_throughput") == rows, 600, 0.2)
        at = sorted(server.accepted_at)
        # The server admits at most R requests in any 60 s: exactly WINDOWS * R in the WINDOWS minutes from
        # the first one. What the worker got answered there, over that, is the share of the allowed rate it
        # used (the backlog never ran out in them).
        used = sum(1 for t in at if t < at[0] + 60 * WINDOWS)
        return {
            "allowed_rpm": rpm,
            "texts_per_request": per_request,
            "rows": rows,
            "seconds": round(seconds, 1),
            "requests": len(at),
            "throttled_429": server.statuses.get(429, 0),
            f"requests_in_first_{WINDOWS}_minutes": used,
            "ratio_to_allowed": round(used / (WINDOWS * rpm), 3),
            "rows_per_second": round(used * per_request / (60 * WINDOWS), 2),
        }


def _latencies(conn: psycopg.Connection, table: str, samples: int) -> list[float]:
    out = []
    for i in range(samples):
        pk = _one(conn, f"INSERT INTO {table} (body) VALUES (%s) RETURNING id::text", (f"probe {i} of the latency",))
        cid = _one(conn, "SELECT vk.collection_id(%s)", (table,))
        start = time.monotonic()
        _wait(
            lambda pk=pk, cid=cid: (
                _one(conn, "SELECT 1 FROM vk.embeddings WHERE collection_id = %s AND pk = %s", (cid, pk)) is not None
            ),
            60,
            0.005,
        )
        out.append((time.monotonic() - start) * 1000)
        time.sleep(0.1)
    return out


def _pcts(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=20)
    return {"p50_ms": round(statistics.median(values), 1), "p95_ms": round(q[18], 1)}


def storm(url: str, encode: Any, samples: int) -> dict[str, Any]:
    with (
        EmbeddingServer(encode) as a,
        EmbeddingServer(encode) as b,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        _register(url, "api-storm", a)
        _register(url, "api-healthy", b)
        _collection(conn, "bench_storm", "api-storm@1")
        _collection(conn, "bench_healthy", "api-healthy@1")
        with _service(url):
            _latencies(conn, "bench_healthy", 3)  # warm: encoders loaded, fingerprints recorded
            idle = _latencies(conn, "bench_healthy", samples)
            a.script(*[status(429, retry_after=1)] * 100_000)
            stop = threading.Event()

            def feed() -> None:
                with psycopg.connect(url, autocommit=True) as feeder:
                    while not stop.is_set():
                        _fill(feeder, "bench_storm", 5, "storm")  # one statement: the application's rows
                        feeder.execute("INSERT INTO bench_storm (body) VALUES ('one more storm row')")
                        stop.wait(0.2)

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            time.sleep(3)
            try:
                stormy = _latencies(conn, "bench_healthy", samples)
            finally:
                stop.set()
                feeder.join()
            storm_requests, dead = a.requests, _dead(conn, "bench_storm")
            waiting = int(
                _one(conn, "SELECT count(*) FROM vk.queue WHERE collection_id = vk.collection_id('bench_storm')")
            )
        return {
            "idle": _pcts(idle),
            "storm": _pcts(stormy),
            "p95_ratio": round(_pcts(stormy)["p95_ms"] / _pcts(idle)["p95_ms"], 2),
            "storm_requests_to_a": storm_requests,
            "a_rows_waiting": waiting,
            "a_rows_dead": dead,
        }


def outage(url: str, encode: Any, seconds: float) -> dict[str, Any]:
    with EmbeddingServer(encode) as server, psycopg.connect(url, autocommit=True) as conn:
        _register(url, "api-outage", server)
        _collection(conn, "bench_outage", "api-outage@1")
        rows = 2000
        _fill(conn, "bench_outage", rows, "outage")
        with _service(url):
            _wait(lambda: _embedded(conn, "bench_outage") >= rows // 2, 600, 0.05)
            server.stop()
            down_at = _embedded(conn, "bench_outage")
            time.sleep(seconds)
            during = _embedded(conn, "bench_outage") - down_at
            dead_during = _dead(conn, "bench_outage")
            server.start()
            drained = _wait(lambda: _embedded(conn, "bench_outage") == rows, 900, 0.1)
        return {
            "rows": rows,
            "embedded_when_it_went_down": down_at,
            "outage_seconds": seconds,
            "embedded_while_down": during,
            "dead_while_down": dead_during,
            "dead_after": _dead(conn, "bench_outage"),
            "lost": rows - _embedded(conn, "bench_outage"),
            "seconds_to_drain_after_return": round(drained, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rpm", type=int, default=60, help="requests a minute provider A allows")
    parser.add_argument("--inputs", type=int, default=8, help="inputs a request (the probe sentence among them)")
    parser.add_argument("--samples", type=int, default=30, help="INSERTs timed, idle and during the storm")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds provider A is down")
    parser.add_argument("--only", choices=("throughput", "storm", "outage"), help="run one part")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    minilm = load_encoder(ModelVersion(0, "minilm", 1, "sentence-transformers", 384, "cosine", {"source": MINILM}))
    lock = threading.Lock()

    def encode(texts: list[str]) -> Any:
        with lock:
            return minilm.encode(texts)

    results: dict[str, Any] = {}
    with bench_database() as url:
        for part in ("throughput", "storm", "outage"):
            if args.only and part != args.only:
                continue
            forget_providers()
            if part == "throughput":
                results[part] = throughput(url, encode, args.rpm, args.inputs)
            elif part == "storm":
                results[part] = storm(url, encode, args.samples)
            else:
                results[part] = outage(url, encode, args.outage)
            if not args.json:
                print(part, json.dumps(results[part]), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
