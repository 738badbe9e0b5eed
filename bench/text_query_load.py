"""Text queries under load: what a waiting caller costs, a storm against a quiet caller, new rows during a backfill.

One `vectorkeep worker` process (bench.text_queries.running_worker) serves
vk.documents: 3,000 corpus rows, the first 400 embedded with minilm@1 (the
search default) by that worker; the other rows' minilm@1 queue rows are
deleted, as bench/scale.py does (they are there to be backfilled). In order:

1. waiting: 8 connections call vk.embed('minilm@1', text) over and over, each
   text new, for 8 s. The CPU seconds (utime + stime of /proc/<pid>/stat) of
   their PostgreSQL backends and of the loopback backends that carry their
   requests (application_name 'vectorkeep text query'), over the seconds the
   callers spent waiting; the worker process's CPU in the same window beside
   it. Needs the server's processes on this machine, readable (as root or as
   their user); otherwise the CPU figures are None.
2. storm: a quiet caller (a login role in vk_app, SELECT on vk.documents,
   vk.embed_timeout 10s) sends vk.search('documents', text, 10) every 200 ms,
   each text new: its latencies for 10 s alone, then for 20 s while 16
   connections of another login role (in vk_app) send vk.embed with new texts
   as fast as they can, 4 of them texts of 100,000 characters. A quiet query
   that fails counts at the time it took to fail; the storm's errors are
   counted by SQLSTATE. The two roles are dropped after.
3. backfill: 20 single-row INSERTs into vk.documents, 0.5 s apart, each timed
   from its commit to the moment its minilm@1 vector is found in vk.embeddings
   (polled every 10 ms): first with the worker idle, then while the 3,000 rows
   are backfilled for minilm@2 (a second version of the same encoder, added by
   vk.add_model: all rows queued at once, a reembed job submitted). A row not
   embedded within 60 s counts as 60 s (then the ratio is a lower bound).

    python -m bench.text_query_load
"""

import argparse
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bench.database import bench_database
from bench.ingest import texts
from bench.text_queries import _ms, _one, questions, running_worker
from vectorkeep.db.connect import connect

EMBED = "SELECT vk.embed('minilm@1', %s)"
QUIET_SEARCH = "SELECT pk FROM vk.search('documents', %s, 10)"
LOOPBACKS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'vectorkeep text query'"
)
HAS_VECTOR = (
    "SELECT e.pk FROM vk.embeddings e JOIN vk.collections c ON c.id = e.collection_id "
    "WHERE c.name = 'documents' AND e.pk = ANY(%s) AND e.model_id = %s"
)
LONG_TEXT = 100_000
QUIET_PHASES = (("quiet_alone", "quiet"), ("quiet_in_storm", "storm"))


@cache
def _phrases() -> tuple[list[str], str]:
    """Short questions, and corpus text enough to pad one to LONG_TEXT characters."""
    padding = " ".join(texts(100))
    return questions(200, seed=23), padding * (LONG_TEXT // len(padding) + 1)


def _text(label: str, n: int, length: int = 0) -> str:
    """A text never asked before (label and n make it unique), padded with corpus text to length."""
    phrases, padding = _phrases()
    text = f"{label} {n}: {phrases[n % len(phrases)]}"
    return (text + " " + padding)[:length] if length else text


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), or None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_total(pids: set[int], before: dict[int, float | None]) -> float | None:
    """CPU seconds the pids spent since `before` (a pid not in it: since it started)."""
    total = 0.0
    for pid in pids:
        now = _cpu_seconds(pid)
        if now is None:
            return None
        total += now - (before.get(pid) or 0.0)
    return total


def _settle(conn: psycopg.Connection, timeout: float = 120.0) -> None:
    """Wait for an empty embedding queue and no text query waiting."""
    deadline = time.monotonic() + timeout
    while _one(conn, "SELECT (SELECT count(*) FROM vk.queue) + (SELECT count(*) FROM vk.embed_requests)"):
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not drain its queue")
        time.sleep(0.2)


def _load(url: str, documents: int, embedded: int) -> None:
    with connect(url, autocommit=True) as conn:
        with conn.cursor() as cur, cur.copy("COPY vk.documents (body) FROM STDIN") as copy:
            for body in texts(documents):
                copy.write_row((body,))
        conn.execute(
            "DELETE FROM vk.queue WHERE pk NOT IN (SELECT id::text FROM vk.documents ORDER BY id LIMIT %s)",
            (embedded,),
        )


# 1. What a waiting caller costs.


def waiting_cost(url: str, worker_pid: int, *, callers: int, seconds: float) -> dict[str, Any]:
    conns = [connect(url, autocommit=True) for _ in range(callers)]
    go, stop = threading.Event(), threading.Event()
    waits: list[float] = []  # every call's seconds (list.append is atomic)
    errors: list[str] = []

    def call(conn: psycopg.Connection, caller: int) -> None:
        go.wait()
        n = 0
        while not stop.is_set():
            n += 1
            start = time.perf_counter()
            try:
                conn.execute(EMBED, (_text(f"waiting {caller}", n),))
            except psycopg.Error as exc:
                errors.append(_sqlstate(exc))
            waits.append(time.perf_counter() - start)

    try:
        for i, conn in enumerate(conns):
            conn.execute("SET vk.embed_timeout = '30s'")
            conn.execute(EMBED, (_text(f"waiting warm-up {i}", 0),))  # opens its loopback connection
        callers_pids = {_one(conn, "SELECT pg_backend_pid()") for conn in conns}
        with connect(url, autocommit=True) as admin:
            loopbacks = {r[0] for r in admin.execute(LOOPBACKS)}
            threads = [threading.Thread(target=call, args=(conn, i)) for i, conn in enumerate(conns)]
            for t in threads:
                t.start()
            before = {pid: _cpu_seconds(pid) for pid in callers_pids | loopbacks | {worker_pid}}
            start = time.perf_counter()
            go.set()
            time.sleep(seconds)
            stop.set()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
            loopbacks_after = {r[0] for r in admin.execute(LOOPBACKS)}
            backends = _cpu_total(callers_pids, before)
            loopback = _cpu_total(loopbacks_after, before)
            worker = _cpu_total({worker_pid}, before)
    finally:
        for conn in conns:
            conn.close()
    waiting = sum(waits)
    both = None if backends is None or loopback is None else backends + loopback
    return {
        "waiting_callers": callers,
        "waiting_wall_seconds": round(wall, 2),
        "waiting_caller_seconds": round(waiting, 2),
        "waiting_calls": len(waits),
        "waiting_errors": _counts(Counter(errors)),
        "waiting_call_p50_ms": _ms(waits, 50),
        "waiting_loopback_backends": f"{len(loopbacks)} before, {len(loopbacks_after)} after",
        "caller_backend_cpu_seconds": None if backends is None else round(backends, 2),
        "loopback_backend_cpu_seconds": None if loopback is None else round(loopback, 2),
        "cpu_seconds_per_waiting_caller_second": None if both is None else round(both / waiting, 4),
        "worker_cpu_seconds": None if worker is None else round(worker, 2),
        "worker_cpu_per_wall_second": None if worker is None else round(worker / wall, 3),
    }


# 2. A storm of text queries against a quiet caller.


def _as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@contextmanager
def _login_role(url: str, name: str, *, read_documents: bool) -> Iterator[str]:
    """A login role in vk_app for this run (its URL), dropped after."""
    role = sql.Identifier(name)
    with connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE vk_app").format(role))
        if read_documents:
            admin.execute(sql.SQL("GRANT SELECT ON vk.documents TO {}").format(role))
    try:
        yield _as_user(url, name)
    finally:
        with connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(role))
            admin.execute(sql.SQL("DROP ROLE {}").format(role))


def _sqlstate(exc: psycopg.Error) -> str:
    return exc.sqlstate or type(exc).__name__


def _counts(counter: Counter[str]) -> str:
    """'57014: 3, 53400: 1' (a string, so that the table prints it), or 'none'."""
    return ", ".join(f"{k}: {v}" for k, v in counter.most_common()) or "none"


class _Quiet(threading.Thread):
    """One text search every `every` seconds; each one's (phase, seconds, SQLSTATE or None)."""

    def __init__(self, url: str, every: float) -> None:
        super().__init__()
        self.url, self.every = url, every
        self.phase = "quiet"
        self.stop = threading.Event()
        self.results: list[tuple[str, float, str | None]] = []

    def run(self) -> None:
        with connect(self.url, autocommit=True) as conn:
            conn.execute("SET vk.embed_timeout = '10s'")
            conn.execute(QUIET_SEARCH, (_text("quiet warm-up", 0),))  # opens its loopback connection
            n, due = 0, time.perf_counter()
            while not self.stop.is_set():
                time.sleep(max(0.0, due - time.perf_counter()))
                n, due, phase = n + 1, due + self.every, self.phase
                start, error = time.perf_counter(), None
                try:
                    conn.execute(QUIET_SEARCH, (_text("quiet", n),)).fetchall()
                except psycopg.Error as exc:
                    error = _sqlstate(exc)
                self.results.append((phase, time.perf_counter() - start, error))


def _storm_caller(url: str, caller: int, length: int, stop: threading.Event, out: Counter[str]) -> None:
    conn = connect(url, autocommit=True)
    n = 0
    try:
        while not stop.is_set():
            n += 1
            try:
                conn.execute(EMBED, (_text(f"storm {caller}", n, length),))
                out["answered_long" if length else "answered"] += 1
            except psycopg.Error as exc:
                out[_sqlstate(exc)] += 1
                if conn.broken:
                    conn.close()
                    conn = connect(url, autocommit=True)
    finally:
        conn.close()


def storm(
    url: str, *, quiet_seconds: float, storm_seconds: float, connections: int, long_connections: int
) -> dict[str, Any]:
    tag = os.getpid()
    with (
        _login_role(url, f"vk_bench_quiet_{tag}", read_documents=True) as quiet_url,
        _login_role(url, f"vk_bench_storm_{tag}", read_documents=False) as storm_url,
    ):
        quiet = _Quiet(quiet_url, every=0.2)
        quiet.start()
        time.sleep(quiet_seconds)
        stop = threading.Event()
        counts: list[Counter[str]] = [Counter() for _ in range(connections)]
        callers = [
            threading.Thread(
                target=_storm_caller, args=(storm_url, i, LONG_TEXT if i < long_connections else 0, stop, counts[i])
            )
            for i in range(connections)
        ]
        quiet.phase = "storm"
        for t in callers:
            t.start()
        time.sleep(storm_seconds)
        quiet.phase = "after"
        stop.set()
        quiet.stop.set()
        for t in [*callers, quiet]:
            t.join()
    total = sum(counts, Counter())
    # The quiet caller's queries, by the phase each was sent in: alone, then in the storm.
    phases = {name: [(s, e) for p, s, e in quiet.results if p == phase] for name, phase in QUIET_PHASES}
    out: dict[str, Any] = {"storm_connections": connections, "storm_long_connections": long_connections}
    for name, results in phases.items():
        out[f"{name}_p50_ms"] = _ms([s for s, _ in results], 50)
        out[f"{name}_p95_ms"] = _ms([s for s, _ in results], 95)
        out[f"{name}_answered"] = f"{sum(e is None for _, e in results)}/{len(results)}"
        out[f"{name}_errors"] = _counts(Counter(e for _, e in results if e))
    out["storm_calls_answered"] = total.pop("answered", 0)
    out["storm_long_calls_answered"] = total.pop("answered_long", 0)
    out["storm_errors_by_sqlstate"] = _counts(total)
    out["storm_p95_over_quiet_p95"] = round(out["quiet_in_storm_p95_ms"] / out["quiet_alone_p95_ms"], 2)
    return out


# 3. New rows while a backfill runs.


def _new_rows(
    conn: psycopg.Connection, model_id: int, label: str, inserts: int, spacing: float, limit: float
) -> tuple[list[float], int]:
    """Seconds from each INSERT's commit to its vector (limit for one not there by then), and how many were."""
    committed: dict[str, float] = {}
    took: dict[str, float] = {}
    next_insert = time.perf_counter()
    while len(committed) < inserts or len(took) < inserts:
        now = time.perf_counter()
        if len(committed) < inserts and now >= next_insert:
            body = f"{label} row {len(committed)}: {_text(label, len(committed))}"
            pk = _one(conn, "INSERT INTO vk.documents (body) VALUES (%s) RETURNING id::text", (body,))
            committed[pk] = time.perf_counter()  # autocommit: committed when the statement returns
            next_insert += spacing
        waiting = [pk for pk in committed if pk not in took]
        if waiting:
            for (pk,) in conn.execute(HAS_VECTOR, (waiting, model_id)).fetchall():
                took[pk] = time.perf_counter() - committed[pk]
            for pk in waiting:
                if pk not in took and time.perf_counter() - committed[pk] > limit:
                    took[pk] = limit
        time.sleep(0.01)
    censored = sum(s >= limit for s in took.values())
    return list(took.values()), inserts - censored


def backfill(url: str, *, inserts: int, spacing: float, limit: float) -> dict[str, Any]:
    with connect(url, autocommit=True) as conn:
        minilm = _one(conn, "SELECT (vk.model('minilm@1')).id")
        _settle(conn)
        idle, idle_done = _new_rows(conn, minilm, "idle", inserts, spacing, limit)

        conn.execute(
            "INSERT INTO vk.models (name, version, kind, dim, distance, params) "
            "SELECT name, 2, kind, dim, distance, params FROM vk.models WHERE id = %s",
            (minilm,),
        )
        conn.execute("SELECT vk.add_model('documents', 'minilm@2')")
        left = "SELECT count(*) FROM vk.queue WHERE model_id = (vk.model('minilm@2')).id"
        queued = _one(conn, left)
        started = time.perf_counter()
        while _one(conn, left) == queued:  # the worker has loaded minilm@2 and written a batch
            if time.perf_counter() - started > limit:
                raise RuntimeError("the backfill did not start")
            time.sleep(0.1)
        start_left, start = _one(conn, left), time.perf_counter()
        during, during_done = _new_rows(conn, minilm, "backfill", inserts, spacing, limit)
        end_left, seconds = _one(conn, left), time.perf_counter() - start
    figures = {
        "backfill_rows_queued": queued,
        "backfill_rows_left_at_start": start_left,
        "backfill_rows_left_at_end": end_left,
        "backfill_rows_per_s": round((start_left - end_left) / seconds, 1),
        "new_row_inserts": inserts,
        "new_row_idle_p50_ms": _ms(idle, 50),
        "new_row_idle_p95_ms": _ms(idle, 95),
        "new_row_idle_embedded_in_limit": f"{idle_done}/{inserts}",
        "new_row_during_backfill_p50_ms": _ms(during, 50),
        "new_row_during_backfill_p95_ms": _ms(during, 95),
        "new_row_during_backfill_embedded_in_limit": f"{during_done}/{inserts}",
        "new_row_limit_s": limit,
    }
    figures["new_row_p95_during_backfill_over_idle"] = round(
        figures["new_row_during_backfill_p95_ms"] / figures["new_row_idle_p95_ms"], 2
    )
    return figures


def run(
    url: str,
    *,
    documents: int = 3000,
    embedded: int = 400,
    callers: int = 8,
    waiting_seconds: float = 8.0,
    quiet_seconds: float = 10.0,
    storm_seconds: float = 20.0,
    inserts: int = 20,
) -> dict[str, Any]:
    _load(url, documents, embedded)
    out: dict[str, Any] = {"documents": documents, "documents_embedded_before": embedded}
    with running_worker(url) as worker, connect(url, autocommit=True) as conn:
        _settle(conn)
        out |= waiting_cost(url, worker.pid, callers=callers, seconds=waiting_seconds)
        _settle(conn)
        out |= storm(url, quiet_seconds=quiet_seconds, storm_seconds=storm_seconds, connections=16, long_connections=4)
        _settle(conn)
        out |= backfill(url, inserts=inserts, spacing=0.5, limit=60.0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.text_query_load", description=__doc__)
    parser.parse_args()
    with bench_database() as url:
        print(json.dumps(run(url), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
