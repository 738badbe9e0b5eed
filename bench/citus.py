"""Citus: vk.search and two workers on a two-worker Citus cluster, side by side with one server.

One run, one throwaway cluster (tests/citus_cluster.py: a coordinator and two worker nodes on this
machine, the embedded server's binaries with Citus built in: PostgreSQL 18, pgvector 0.8), the same
data everywhere:

1. search: N clustered 384-d unit vectors (a mixture of 200 Gaussian clusters, normalised, seed 7:
   bench/search.py's) as collection "documents" (minilm@1) written straight into vk.embeddings
   (binary COPY without the collection's indexes, then vk.build_index_v1) of
   (a) single: a plain migrated database on the coordinator node, not distributed;
   (b) by_collection: vk.distribute(embeddings_by => 'collection_id'): the collection on one shard;
   (c) by_pk: vk.distribute(embeddings_by => 'pk'): the collection over every shard, the coordinator
       merges each shard's top k.
   Q held-out queries from the same mixture, the three databases interleaved query by query;
   recall@10 against exact search (numpy, float64) and the median / p95 latency of vk.search, each
   cluster's median over the single server's.
2. ingest: M texts INSERTed into vk.documents (triggers: the queue on one server, vk.captured on the
   Citus nodes), then two worker processes (the no-op encoder) drain them, running as `vectorkeep
   worker` does (collecting the captured keys on Citus when the queue is empty); rows/s of (a) single,
   (b) the cluster by collection_id, and (c) by pk; cluster / single. The profile: CPU seconds of each
   node's processes, of the two workers and of the whole machine over the drain, and the workers'
   time per statement (claim, write, commit, collect).

    python -m bench.citus [--rows 200000] [--queries 200] [--ingest-rows 20000] [--ingest-rounds 2] [--json]

A table on stdout (--json: the JSON instead), progress on stderr, the JSON in
bench/results/citus-<timestamp>.json. About 12 minutes at the defaults on 2 cores.
"""

import argparse
import hashlib
import importlib
import json
import logging
import multiprocessing as mp
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from bench.ingest import NoopEncoder, texts
from bench.search import DIM, _clustered
from vectorkeep.db import migrate
from vectorkeep.db.distribute import distribute

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

COLLECTION = "documents"
MODEL = "minilm@1"
K = 10
SHARDS = 4  # two per worker node, as the test cluster's default
WORKERS = 2
BATCH_SIZE = 64  # WorkerSettings' default: what `vectorkeep worker` runs with
EF_SEARCH = 40  # pgvector's default, on every node
EF_SWEEP = (80, 120)  # recall at larger ef_search: a session's SET, which vk's query carries to the shards

# Every node gets these (the single server is the coordinator node, so all three databases run
# with the same settings). maintenance_work_mem server-wide: Citus builds the shards' indexes
# over its own connections, which a session's SET does not reach, and an HNSW graph that outgrows
# it builds several times slower. shared_buffers: the test cluster's 64MB holds a tenth of the
# 200,000-vector index.
NODE_SETTINGS = {
    "citus.shard_count": str(SHARDS),
    "maintenance_work_mem": "'1GB'",
    "shared_buffers": "'1GB'",
}

_started = time.monotonic()


def say(message: str) -> None:
    """Progress, on stderr (stdout carries the table or the JSON)."""
    elapsed = time.monotonic() - _started
    print(f"[{int(elapsed) // 60:3d}:{int(elapsed) % 60:02d}] {message}", file=sys.stderr, flush=True)


def _cluster_module() -> Any:
    # tests/ is no package: citus_cluster.py is imported the way the tests import it.
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return importlib.import_module("citus_cluster")


def _one(conn: psycopg.Connection, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    return row[0] if row else None


def _ids(conn: psycopg.Connection) -> tuple[int, int]:
    """The ids of collection "documents" and of minilm@1."""
    return _one(conn, "SELECT vk.collection_id(%s)", (COLLECTION,)), _one(conn, "SELECT (vk.model(%s)).id", (MODEL,))


# --- databases -------------------------------------------------------------------------------------------


def plain_database(cluster: Any, name: str) -> str:
    """A migrated database on the coordinator node without the citus extension: one server."""
    with psycopg.connect(cluster.coordinator.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = str(cluster.coordinator.url(name))
    migrate.upgrade(url)
    return url


def distributed_database(cluster: Any, name: str, embeddings_by: str) -> tuple[str, list[dict[str, Any]]]:
    """A migrated database on every node, then vk.distribute(); its coordinator URL and placements."""
    url = str(cluster.create_database(name))
    migrate.upgrade(url)
    placements = distribute(url, SHARDS, embeddings_by)
    return url, [p.__dict__ for p in placements]


def drop_plain(cluster: Any, name: str) -> None:
    with psycopg.connect(cluster.coordinator.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- search ----------------------------------------------------------------------------------------------


def load_vectors(url: str, vectors: np.ndarray, label: str) -> dict[str, Any]:
    """The vectors as rows '0'..'N-1' of "documents", as a worker would have written them (text, offsets,
    hash of the text), loaded without the collection's indexes, which vk.build_index_v1 then builds:
    one bulk build instead of an HNSW insert per row (minutes for 200,000 on 2 cores)."""
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        c_id, m_id = _ids(conn)
        for name in ("_hnsw_index_name", "_keyword_index_name"):
            index = _one(conn, f"SELECT vk.{name}(%s, %s)", (c_id, m_id))
            conn.execute(sql.SQL("DROP INDEX IF EXISTS vk.{}").format(sql.Identifier(index)))
        start = time.perf_counter()
        columns = "collection_id, pk, model_id, chunk, start_char, end_char, embedding, body, text_sha256, truncated"
        with conn.cursor() as cur, cur.copy(f"COPY vk.embeddings ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "text", "int8", "int4", "int4", "int4", "vector", "text", "bytea", "bool"])
            for i, v in enumerate(vectors):
                body = f"synthetic vector {i}"
                copy.write_row(
                    (c_id, str(i), m_id, 0, 0, len(body), v, body, hashlib.sha256(body.encode()).digest(), False)
                )
                if (i + 1) % 50_000 == 0:
                    say(f"search {label}: {i + 1:,} / {len(vectors):,} rows copied")
        load_s = time.perf_counter() - start
        say(f"search {label}: {len(vectors):,} rows in {load_s:.1f} s; building the indexes (vk.build_index_v1)")
        conn.execute("SET maintenance_work_mem = '1GB'")
        start = time.perf_counter()
        state = _one(conn, "SELECT vk.build_index_v1(%s, %s)", (c_id, m_id))
        index_s = time.perf_counter() - start
        conn.execute("ANALYZE vk.embeddings")
        rows = _one(conn, "SELECT count(*) FROM vk.embeddings WHERE collection_id = %s", (c_id,))
    say(f"search {label}: indexes {state} in {index_s:.1f} s")
    return {"load_s": round(load_s, 1), "index_build_s": round(index_s, 1), "index_state": state, "rows": rows}


def _plan(conn: psycopg.Connection, query: np.ndarray) -> dict[str, Any]:
    """EXPLAIN of the k-NN query vk.search runs (through the coordinator: Citus shows a task's remote
    plan) and whether it reads the collection's HNSW index."""
    c_id, m_id = _ids(conn)
    # By ids: Citus passes no whole row of its (reference) tables to a function, a row built here it does.
    nearest = _one(
        conn, "SELECT vk._nearest_sql(vk.collection_v1(%s), vk.model_v1(%s), false, false, false)", (c_id, m_id)
    )
    with psycopg.ClientCursor(conn) as cur:
        text = nearest.replace("$1", "%s").replace("$2", str(K))
        # The query vector's 384 numbers, twice per scan line, say nothing: shortened.
        plan = [re.sub(r"'\[[^\]]*\]'", "'[…]'", r[0]) for r in cur.execute("EXPLAIN " + text, (query, query))]
    index = _one(conn, "SELECT vk._hnsw_index_name(%s, %s)", (c_id, m_id))
    return {"uses_hnsw_index": any(index in line for line in plan), "plan": plan}


# vk._nearest_sql's k-NN query: flat, or (a relaxed_order scan) wrapped in a subquery ordered again outside;
# the core alone, for the profile.
_WRAPPER = re.compile(
    r"^(?:SELECT n\.\* FROM \((?P<core>.*)\) n ORDER BY n\.distance|(?P<flat>SELECT e\.pk, .*))$", re.DOTALL
)


def _search_profile(conns: dict[str, psycopg.Connection], queries: np.ndarray) -> dict[str, Any]:
    """Where vk.search's time goes, per database, interleaved as the searches are: the median ms of an
    empty round trip (SELECT 1), of the collection and model lookups vk.search starts with
    (vk.collection_model_v1: reads of vk.collections and vk.models, reference tables on Citus), and of
    the k-NN query that vk.search wraps, sent alone (no PL/pgSQL, no outer subquery, not prepared: the
    EXECUTE in vk.search plans on every call too). On Citus a query ordered over a subquery of a
    multi-shard table is planned in two steps (a distributed subplan whose rows go to an intermediate
    result, then a task that reads it); the flat query in one (each shard's top k, merged by the
    coordinator)."""
    cores: dict[str, str] = {}
    for name, conn in conns.items():
        c_id, m_id = _ids(conn)
        nearest = _one(
            conn, "SELECT vk._nearest_sql(vk.collection_v1(%s), vk.model_v1(%s), false, false, false)", (c_id, m_id)
        )
        match = _WRAPPER.match(nearest)
        if match is None:  # another shape (a chunked collection): nothing to compare
            return {"skipped": "vk._nearest_sql has another shape: " + nearest[:200]}
        cores[name] = (match.group("core") or match.group("flat")).replace("$1", "%(q)s").replace("$2", "%(k)s")
    steps: dict[str, Callable[[psycopg.Connection, str, np.ndarray], Any]] = {
        "round_trip": lambda conn, name, q: conn.execute("SELECT 1").fetchall(),
        "lookups": lambda conn, name, q: conn.execute(
            "SELECT (vk.collection_model_v1(%s, NULL)).id", (COLLECTION,)
        ).fetchall(),
        "knn_query": lambda conn, name, q: conn.execute(cores[name], {"q": q, "k": K}, prepare=False).fetchall(),
    }
    times: dict[str, dict[str, list[float]]] = {name: {step: [] for step in steps} for name in conns}
    names = list(conns)
    for i, q in enumerate(queries):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            for step, call in steps.items():
                start = time.perf_counter()
                call(conns[name], name, q)
                times[name][step].append(time.perf_counter() - start)
    return {
        name: {f"{step}_median_ms": round(statistics.median(t) * 1000, 3) for step, t in by_step.items()}
        for name, by_step in times.items()
    }


def _ef_search_sweep(
    conns: dict[str, psycopg.Connection], queries: np.ndarray, exact: list[set[str]]
) -> dict[str, dict[str, Any]]:
    """Recall@10 and median ms at each EF_SWEEP value, as a user sets it: `SET hnsw.ef_search` for the
    session, searches outside a transaction block (vk's k-NN query carries the setting to the shards,
    vk._on_shard). Interleaved query by query as the main run; each cluster's median over the single
    server's at the same ef_search."""
    names = list(conns)
    out: dict[str, dict[str, Any]] = {}
    for ef in EF_SWEEP:
        for conn in conns.values():
            conn.execute(f"SET hnsw.ef_search = {ef}")
        found: dict[str, list[set[str]]] = {name: [] for name in names}
        times: dict[str, list[float]] = {name: [] for name in names}
        for i, q in enumerate(queries):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                start = time.perf_counter()
                rows = (
                    conns[name].execute("SELECT pk FROM vk.search(%s, %s::vector, %s)", (COLLECTION, q, K)).fetchall()
                )
                times[name].append(time.perf_counter() - start)
                found[name].append({r[0] for r in rows})
        out[str(ef)] = {
            name: {
                "recall_at_10": round(
                    sum(len(f & e) for f, e in zip(found[name], exact, strict=True)) / (K * len(exact)), 4
                ),
                "median_ms": round(statistics.median(times[name]) * 1000, 3),
            }
            for name in names
        }
        if "single" in out[str(ef)]:
            for name in names:
                out[str(ef)][name]["median_over_single"] = round(
                    out[str(ef)][name]["median_ms"] / out[str(ef)]["single"]["median_ms"], 3
                )
    for conn in conns.values():
        conn.execute("RESET hnsw.ef_search")
    return out


def _ef_search_reaches_shards(conn: psycopg.Connection, query: np.ndarray) -> bool:
    """Whether a session's hnsw.ef_search reaches the index scans outside a transaction block: with
    ef_search 1 an HNSW scan returns at most 1 row, so the k-NN query vk._nearest_sql builds then (k = 10)
    returns one per shard scanned (4 at most), not 10."""
    c_id, m_id = _ids(conn)
    conn.execute("SET hnsw.ef_search = 1")
    try:
        nearest = _one(
            conn, "SELECT vk._nearest_sql(vk.collection_v1(%s), vk.model_v1(%s), false, false, false)", (c_id, m_id)
        )
        match = _WRAPPER.match(nearest)
        if match is None:
            return False
        core = (match.group("core") or match.group("flat")).replace("$1", "%(q)s").replace("$2", "%(k)s")
        rows = conn.execute(core, {"q": query, "k": K}, prepare=False).fetchall()  # type: ignore[arg-type]
    finally:
        conn.execute("RESET hnsw.ef_search")
    return len(rows) < K


def search(urls: dict[str, str], data: np.ndarray, queries: np.ndarray, warmup: np.ndarray) -> dict[str, Any]:
    """vk.search on every database, interleaved query by query (the order rotating), so that drift and
    the other processes of this machine weigh on each alike."""
    scores = queries.astype(np.float64) @ data.astype(np.float64).T
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    exact = [{str(i) for i in row} for row in top]
    names = list(urls)
    conns = {name: psycopg.connect(url, autocommit=True) for name, url in urls.items()}
    try:
        for conn in conns.values():
            register_vector(conn)
        statement = "SELECT pk, distance FROM vk.search(%s, %s::vector, %s)"
        # Warm-up (not counted): the index pages into the buffers, psycopg's prepared statement, Citus's
        # connections to the worker nodes.
        for q in warmup:
            for conn in conns.values():
                conn.execute(statement, (COLLECTION, q, K)).fetchall()
        times: dict[str, list[float]] = {name: [] for name in names}
        found: dict[str, list[set[str]]] = {name: [] for name in names}
        for i, q in enumerate(queries):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                start = time.perf_counter()
                rows = conns[name].execute(statement, (COLLECTION, q, K)).fetchall()
                times[name].append(time.perf_counter() - start)
                found[name].append({r[0] for r in rows})
            if (i + 1) % 50 == 0:
                say(f"search: {i + 1} / {len(queries)} queries on each database")
        out: dict[str, Any] = {}
        for name in names:
            hits = [len(f & e) for f, e in zip(found[name], exact, strict=True)]
            out[name] = {
                "recall_at_10": round(sum(hits) / (K * len(hits)), 4),
                "median_ms": round(statistics.median(times[name]) * 1000, 3),
                "p95_ms": round(float(np.percentile(times[name], 95)) * 1000, 3),
                "results_min": min(len(f) for f in found[name]),
                **_plan(conns[name], queries[0]),
            }
        out["profile"] = _search_profile(conns, queries)
        out["ef_search_sweep"] = _ef_search_sweep(conns, queries, exact)
        for name, conn in conns.items():
            out[name]["ef_search_reaches_the_shards"] = _ef_search_reaches_shards(conn, queries[0])
            # vk.search widens hnsw.ef_search to k for k > 40 (vk._widen_ef_search, set_config): each shard
            # must return k rows for vk.search to.
            out[name]["rows_for_k_100"] = len(conn.execute(statement, (COLLECTION, queries[0], 100)).fetchall())
        for name in names[1:] if names[0] == "single" else ():
            out[name]["median_over_single"] = round(out[name]["median_ms"] / out["single"]["median_ms"], 3)
            out[name]["p95_over_single"] = round(out[name]["p95_ms"] / out["single"]["p95_ms"], 3)
        return out
    finally:
        for conn in conns.values():
            conn.close()


# --- CPU accounting ---------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (field 3 on), or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def node_cpu_s(pgdata: Path) -> float:
    """CPU seconds of a server: its postmaster, its live children (backends, parallel and background
    workers), and the children it has reaped (cutime, cstime), so that backends that ended are counted."""
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    fields = _stat(pid)
    assert fields is not None
    ticks = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            child = _stat(int(entry.name))
            if child is not None and int(child[1]) == pid:
                ticks += int(child[11]) + int(child[12])
    return ticks / _TICK


def machine_cpu_s() -> tuple[float, float]:
    """(busy, all) CPU seconds of the machine since boot (/proc/stat), all cores together."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    total = sum(values)
    return (total - values[3] - values[4]) / _TICK, total / _TICK


class CpuWindow:
    """CPU seconds of each node and of the machine between start() and stop()."""

    def __init__(self, nodes: dict[str, Path]) -> None:
        self.nodes = nodes
        self._before: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        out = {name: node_cpu_s(pgdata) for name, pgdata in self.nodes.items()}
        out["machine_busy"], out["machine_all"] = machine_cpu_s()
        own = os.times()
        out["bench_process"] = own.user + own.system
        return out

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> None:
        after = self._read()
        self.seconds = {name: round(after[name] - self._before[name], 2) for name in after}


# --- ingest ---------------------------------------------------------------------------------------------


class StatementProfile:
    """Wall seconds a worker process spends in each statement (by its name in sql/queries.sql) and in
    commits, summed over its threads: psycopg's execute, executemany and commit, wrapped."""

    def __init__(self) -> None:
        from vectorkeep.sql import queries

        self._names = {text: name for name, text in queries().items()}
        self._lock = threading.Lock()
        self.calls: dict[str, list[float]] = {}

    def _name(self, query: Any) -> str:
        text = query if isinstance(query, str) else str(query)
        return self._names.get(text.strip(), "other: " + " ".join(text.split())[:60])

    def _add(self, name: str, seconds: float) -> None:
        with self._lock:
            entry = self.calls.setdefault(name, [0, 0.0])
            entry[0] += 1
            entry[1] += seconds

    def _timed(self, method: Callable[..., Any], name_of: Callable[[tuple[Any, ...]], str]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._add(name_of(args), time.perf_counter() - start)

        return wrapper

    def install(self) -> None:
        # Only inside the worker processes this module starts: the classes are psycopg's own.
        psycopg.Cursor.execute = self._timed(psycopg.Cursor.execute, lambda a: self._name(a[1]))  # type: ignore[method-assign]
        psycopg.Cursor.executemany = self._timed(psycopg.Cursor.executemany, lambda a: self._name(a[1]))  # type: ignore[method-assign]
        psycopg.Connection.commit = self._timed(psycopg.Connection.commit, lambda a: "commit")  # type: ignore[method-assign]


class _ErrorsToList(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += f": {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        self.messages.append(message[:2000])


def _worker_process(
    url: str,
    counter: Any,
    done_at: Any,
    ready: Any,
    start: Any,
    done: Any,
    stop: Any,
    results: Any,
    target: int,
) -> None:
    """One vectorkeep worker, as `vectorkeep worker` runs it (not until_idle: on Citus an empty queue
    means collecting the captured keys, which the other worker may be doing), until `target` rows are
    committed by the two together; then it reports its CPU, its profile and what it logged."""
    from vectorkeep.workers import kinds
    from vectorkeep.workers.embed import BatchResult
    from vectorkeep.workers.encoder_cache import EncoderCache
    from vectorkeep.workers.worker import Worker, WorkerSettings

    # vk.documents keeps its shipped model (minilm@1, 384-d) and HNSW index; in this process its kind
    # loads the no-op encoder, so the figure is vectorkeep's and the database's, not the model's.
    kinds.EXTRA_LOADERS["sentence-transformers"] = NoopEncoder
    errors = _ErrorsToList()
    logging.getLogger("vectorkeep").addHandler(errors)
    profile = StatementProfile()
    profile.install()

    def on_batch(batch: BatchResult) -> None:
        with counter.get_lock():
            counter.value += batch.embedded
            if counter.value >= target and done_at.value == 0:
                done_at.value = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process
                done.set()

    worker = Worker(url, WorkerSettings(batch_size=BATCH_SIZE), encoders=EncoderCache(), on_batch=on_batch)
    # Stopped by the bench, not at `done`: its sessions (and their backends on every node) must outlive the
    # bench's last CPU reading. A backend that exits while the nodes' CPU is read is counted nowhere (gone
    # from /proc, not yet in its postmaster's cutime): most of a node's CPU is in these few sessions.
    threading.Thread(target=lambda: (stop.wait(), worker.stop()), daemon=True).start()
    ready.put(os.getpid())
    start.wait()
    before = os.times()
    stats = worker.run()
    after = os.times()
    results.put(
        {
            "pid": os.getpid(),
            "embedded": stats.embedded,
            "batches": stats.batches,
            "failed": stats.failed,
            "cpu_s": round(after.user + after.system - before.user - before.system, 2),
            "statements": {name: (int(n), round(s, 3)) for name, (n, s) in profile.calls.items()},
            "errors": errors.messages,
        }
    )


def _backlog(conn: psycopg.Connection, rows: list[str], distributed: bool) -> dict[str, Any]:
    """Plain INSERTs of the texts into vk.documents, 1,000 rows a statement; what the triggers left."""
    start = time.perf_counter()
    for i in range(0, len(rows), 1000):
        conn.execute("INSERT INTO vk.documents (body) SELECT unnest(%s::text[])", (rows[i : i + 1000],))
    seconds = time.perf_counter() - start
    out: dict[str, Any] = {
        "insert_s": round(seconds, 2),
        "insert_rows_per_s": round(len(rows) / seconds, 1),
        "queued": _one(conn, "SELECT count(*) FROM vk.queue"),
    }
    if distributed:
        captured = conn.execute(
            "SELECT nodeid, result FROM run_command_on_all_nodes($$SELECT count(*) FROM vk.captured$$) ORDER BY 1"
        ).fetchall()
        out["captured_by_node"] = {str(n): int(r) for n, r in captured}
    return out


def ingest(url: str, rows: int, nodes: dict[str, Path], label: str, distributed: bool) -> dict[str, Any]:
    corpus = texts(rows)
    with psycopg.connect(url, autocommit=True) as conn:
        c_id, _ = _ids(conn)
        backlog = _backlog(conn, corpus, distributed)
        conn.execute("VACUUM ANALYZE vk.queue")
    say(f"ingest {label}: {rows:,} rows inserted ({backlog['insert_rows_per_s']:,} rows/s), draining with {WORKERS}")

    ctx = mp.get_context("spawn")  # fresh interpreters: no connection or thread of this process inherited
    counter, done_at = ctx.Value("q", 0), ctx.Value("d", 0.0)
    ready, results, start, done, stop = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event(), ctx.Event()
    procs = [
        ctx.Process(target=_worker_process, args=(url, counter, done_at, ready, start, done, stop, results, rows))
        for _ in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    cpu = CpuWindow(nodes)
    cpu.start()
    t0 = time.monotonic()
    start.set()
    # Progress every 5 s; give up after 3 minutes without a committed row.
    last, last_change, stalled = 0, t0, False
    while not done.wait(5):
        now = time.monotonic()
        if counter.value != last:
            last, last_change = counter.value, now
        elif now - last_change > 180:
            stalled = True
            break
        rate = counter.value / (now - t0)
        say(f"ingest {label}: {counter.value:,} / {rows:,} rows, {now - t0:.0f} s, {rate:,.0f} rows/s")
    cpu.stop()
    t1 = done_at.value if done_at.value else time.monotonic()
    stop.set()
    workers = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    seconds = t1 - t0
    with psycopg.connect(url, autocommit=True) as conn:
        embedded = _one(conn, "SELECT count(*) FROM vk.embeddings WHERE collection_id = %s", (c_id,))
        left = _one(conn, "SELECT count(*) FROM vk.queue")
    statements: dict[str, list[float]] = {}
    for w in workers:
        for name, (n, s) in w["statements"].items():
            entry = statements.setdefault(name, [0, 0.0])
            entry[0] += n
            entry[1] += s
    node_total = sum(cpu.seconds[n] for n in nodes)
    worker_total = sum(w["cpu_s"] for w in workers)
    say(f"ingest {label}: {embedded:,} rows in {seconds:.1f} s = {embedded / seconds:,.0f} rows/s")
    return {
        "rows": rows,
        "backlog": backlog,
        "stalled": stalled,
        "seconds": round(seconds, 2),
        # What the workers committed (all the rows unless it stalled), over the drain's time.
        "committed": counter.value,
        "rows_per_s": round(counter.value / seconds, 1),
        "embedded_rows": embedded,
        "queue_left": left,
        "cpu_s": {
            **{f"node_{n}": cpu.seconds[n] for n in nodes},
            "nodes": round(node_total, 2),
            "workers": round(worker_total, 2),
            "bench_process": cpu.seconds["bench_process"],
            "machine_busy": cpu.seconds["machine_busy"],
            "machine_capacity": cpu.seconds["machine_all"],
            "others_on_the_machine": round(
                cpu.seconds["machine_busy"] - node_total - worker_total - cpu.seconds["bench_process"], 2
            ),
        },
        "machine_busy_share": round(cpu.seconds["machine_busy"] / max(cpu.seconds["machine_all"], 1e-9), 3),
        "statements": {
            name: {
                "calls": n,
                "s": round(s, 2),
                "ms_per_call": round(s * 1000 / n, 3),
                "share_of_worker_time": round(s / (WORKERS * seconds), 3),
            }
            for name, (n, s) in sorted(statements.items(), key=lambda kv: -kv[1][1])
        },
        "workers": [{k: w[k] for k in ("pid", "embedded", "batches", "failed", "cpu_s", "errors")} for w in workers],
    }


INGEST_DATABASES = (("single", None), ("by_collection", "collection_id"), ("by_pk", "pk"))


def ingest_rounds(cluster: Any, nodes: dict[str, Path], rows: int, count: int) -> dict[str, Any]:
    """`count` rounds over the three databases, each round into fresh databases (a second backlog into
    the same one would meet a larger HNSW graph), the order reversed every other round so that drift
    and the machine's other load weigh on each alike; then the means."""
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in INGEST_DATABASES}
    placed: dict[str, dict[str, str]] = {}
    errors: dict[str, str] = {}
    for r in range(count):
        order = INGEST_DATABASES if r % 2 == 0 else INGEST_DATABASES[::-1]
        for name, by in order:
            database = f"vk_ingest_{name}_{r}"
            try:
                if by is None:
                    url = plain_database(cluster, database)
                else:
                    url, placements = distributed_database(cluster, database, by)
                    placed[name] = {
                        p["table_name"]: p["distribution_column"]
                        for p in placements
                        if p["citus_table_type"] == "distributed"
                    }
                rounds[name].append(ingest(url, rows, nodes, f"{name} (round {r + 1}/{count})", by is not None))
            except Exception as exc:
                logging.getLogger(__name__).exception("ingest %s failed", name)
                errors[f"{name} round {r + 1}"] = f"{type(exc).__name__}: {exc}"
            finally:
                if by is None:
                    drop_plain(cluster, database)
                else:
                    cluster.drop_database(database)
    out: dict[str, Any] = {name: _ingest_summary(done) for name, done in rounds.items() if done}
    if "single" in out:
        for name in out:
            out[name]["over_single"] = round(out[name]["rows_per_s"] / out["single"]["rows_per_s"], 3)
    out["distributed_by"] = placed
    if errors:
        out["errors"] = errors
    return out


def _ingest_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the rounds: rows/s, and CPU milliseconds per row of each node, of the two workers and of
    the machine; with what they bound (estimates from CPU alone, not measured rates)."""
    rates = [r["rows_per_s"] for r in rounds]
    keys = [k for k in rounds[0]["cpu_s"] if k != "machine_capacity"]
    per_row = {
        k: round(statistics.mean(r["cpu_s"][k] * 1000 / max(r["committed"], 1) for r in rounds), 3) for k in keys
    }
    node_keys = [k for k in keys if k.startswith("node_")]
    cores = os.cpu_count() or 1
    return {
        "rows_per_s": round(statistics.mean(rates), 1),
        "rows_per_s_rounds": rates,
        "cpu_ms_per_row": per_row,
        # The rate at which this CPU per row (nodes, workers, this process) fills the machine's cores.
        "cpu_bound_rows_per_s_on_these_cores": round(
            cores * 1000 / (per_row["nodes"] + per_row["workers"] + per_row["bench_process"]), 1
        ),
        # If each node had these cores to itself: the busiest node's CPU per row is the limit.
        "cpu_bound_rows_per_s_node_per_machine": round(cores * 1000 / max(per_row[k] for k in node_keys), 1),
        "machine_busy_share": round(statistics.mean(r["machine_busy_share"] for r in rounds), 3),
        "every_row_embedded_and_queue_empty": all(
            r["embedded_rows"] == r["rows"] and r["queue_left"] == 0 and not r["stalled"] for r in rounds
        ),
        "rounds": rounds,
    }


# --- the run --------------------------------------------------------------------------------------------


def _machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split("\n")[0].split()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(int(meminfo[1]) / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit.stdout.strip(),
        "uncommitted_changes": bool(dirty.stdout.strip()),
        "load_average_at_start": list(os.getloadavg()),
        "note": "coordinator and both worker nodes run on this one machine: they share its cores",
    }


def _versions(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        return {
            "postgresql": _one(conn, "SHOW server_version"),
            "pgvector": _one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'vector'"),
            "citus": _one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'citus'"),
        }


@contextmanager
def _phase(result: dict[str, Any], key: str) -> Iterator[None]:
    """A failing phase records its error (a product bug is reported, not patched) and the run goes on."""
    try:
        yield
    except Exception as exc:
        logging.getLogger(__name__).exception("%s failed", key)
        result.setdefault("errors", {})[key] = f"{type(exc).__name__}: {exc}"


def run(*, rows: int, queries: int, ingest_rows: int, ingest_round_count: int) -> dict[str, Any]:
    citus_cluster = _cluster_module().citus_cluster
    result: dict[str, Any] = {
        "settings": {
            "rows": rows,
            "queries": queries,
            "ingest_rows": ingest_rows,
            "ingest_rounds": ingest_round_count,
            "dim": DIM,
            "k": K,
            "shards": SHARDS,
            "worker_nodes": 2,
            "ef_search": EF_SEARCH,
            "ingest_workers": WORKERS,
            "batch_size": BATCH_SIZE,
            "node_settings": NODE_SETTINGS,
        },
        "machine": _machine(),
    }
    say(f"starting a Citus cluster (coordinator + 2 workers), {SHARDS} shards")
    with citus_cluster(workers=2, settings=NODE_SETTINGS) as cluster:
        nodes = {"coordinator": cluster.coordinator.pgdata, **{w.name: w.pgdata for w in cluster.workers}}
        result["versions"] = _versions(cluster.url)

        rng = np.random.default_rng(7)
        centroids = rng.standard_normal((200, DIM)).astype(np.float32)
        data = _clustered(rows, rng, centroids)
        held_out = _clustered(queries + 20, rng, centroids)  # never loaded: 20 warm-ups, then the queries
        urls: dict[str, str] = {}
        result["search"] = {"load": {}, "placements": {}}
        # The distributed databases are migrated first: vk's roles are created by the first migration on a
        # server, and only a database with the citus extension creates them on the worker nodes too (the
        # single server's database, migrated first, left the workers without vk_app: "role does not exist").
        for name, by in (("by_collection", "collection_id"), ("by_pk", "pk")):
            with _phase(result, f"search_{name}"):
                say(f"search: a database distributed with embeddings_by => '{by}'")
                url, placements = distributed_database(cluster, f"vk_search_{name}", by)
                result["search"]["placements"][name] = placements
                urls[name] = url
        with _phase(result, "search_single"):
            say("search: the single-server database")
            urls["single"] = plain_database(cluster, "vk_search_single")
        urls = {n: urls[n] for n in ("single", "by_collection", "by_pk") if n in urls}
        for name, url in urls.items():
            with _phase(result, f"search_load_{name}"):
                result["search"]["load"][name] = load_vectors(url, data, name)
        with _phase(result, "search_queries"):
            result["search"].update(search(urls, data, held_out[20:], held_out[:20]))
        # Their buffers and files go before the ingest: the machine as the ingest alone leaves it.
        drop_plain(cluster, "vk_search_single")
        for name in ("by_collection", "by_pk"):
            cluster.drop_database(f"vk_search_{name}")

        result["ingest"] = ingest_rounds(cluster, nodes, ingest_rows, ingest_round_count)
        if "errors" in result["ingest"]:
            result.setdefault("errors", {}).update(result["ingest"]["errors"])
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    result["seconds"] = round(time.monotonic() - _started, 1)
    return result


def table(result: dict[str, Any]) -> str:
    """The figures as a Markdown table: one column per database."""
    names = ("single", "by_collection", "by_pk")
    lines = [
        "| figure | single server | cluster, by collection_id | cluster, by pk | goal |",
        "| --- | --- | --- | --- | --- |",
    ]

    def row(label: str, values: dict[str, Any], goal: str = "") -> None:
        lines.append(f"| {label} | " + " | ".join(str(values.get(n, "—")) for n in names) + f" | {goal} |")

    def pick(section: dict[str, Any], *keys: str) -> dict[str, Any]:
        out = {}
        for n in names:
            value: Any = section.get(n, {})
            for key in keys:
                value = value.get(key, {}) if isinstance(value, dict) else {}
            out[n] = value if value != {} else "—"
        return out

    s = result.get("search", {})
    if any(n in s for n in names):
        row(f"search: recall@10 (ef_search {EF_SEARCH})", pick(s, "recall_at_10"), "≥ 0.95 on the cluster")
        row("search: median ms", pick(s, "median_ms"))
        row("search: p95 ms", pick(s, "p95_ms"))
        row("search: median / single", {**pick(s, "median_over_single"), "single": 1}, "≤ 1.5")
        row("search: p95 / single", {**pick(s, "p95_over_single"), "single": 1})
        for ef, by_name in s.get("ef_search_sweep", {}).items():
            row(f"search: recall@10 at ef_search {ef}", {n: v["recall_at_10"] for n, v in by_name.items()})
            row(
                f"search: median / single at ef_search {ef}",
                {n: v.get("median_over_single", "—") for n, v in by_name.items()},
            )
        row("search: a session's hnsw.ef_search reaches the shards", pick(s, "ef_search_reaches_the_shards"))
        row("search: rows vk.search returns for k = 100", pick(s, "rows_for_k_100"), "100")
        row("search: the plan reads the HNSW index", pick(s, "uses_hnsw_index"))
        for step in ("round_trip", "lookups", "knn_query"):
            row(f"search profile: {step} median ms", pick(s.get("profile", {}), f"{step}_median_ms"))
        row("search: load s", pick(s.get("load", {}), "load_s"))
        row("search: index build s", pick(s.get("load", {}), "index_build_s"))
    i = result.get("ingest", {})
    if any(n in i for n in names):
        row(f"ingest: rows/s, {WORKERS} no-op workers (mean of rounds)", pick(i, "rows_per_s"))
        row("ingest: rows/s of each round", pick(i, "rows_per_s_rounds"))
        row("ingest: / single", {**pick(i, "over_single"), "single": 1}, "≥ 1.5")
        for key in ("node_coordinator", "node_worker1", "node_worker2", "nodes", "workers", "others_on_the_machine"):
            row(f"ingest: CPU ms per row, {key}", pick(i, "cpu_ms_per_row", key))
        row("ingest: machine busy share", pick(i, "machine_busy_share"))
        row("ingest: every row embedded, queue empty", pick(i, "every_row_embedded_and_queue_empty"))
        row("ingest: CPU bound, rows/s on these cores (estimate)", pick(i, "cpu_bound_rows_per_s_on_these_cores"))
        row("ingest: CPU bound, a machine per node (estimate)", pick(i, "cpu_bound_rows_per_s_node_per_machine"))
    lines.append("")
    lines.append(f"run time {result.get('seconds')} s; errors: {result.get('errors', 'none')}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.citus", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000, help="vectors of the search collection")
    parser.add_argument("--queries", type=int, default=200, help="held-out query vectors")
    parser.add_argument("--ingest-rows", type=int, default=20_000, help="backlog the two workers drain")
    parser.add_argument("--ingest-rounds", type=int, default=2, help="rounds of the three ingest databases")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = run(
        rows=args.rows, queries=args.queries, ingest_rows=args.ingest_rows, ingest_round_count=args.ingest_rounds
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"citus-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    say(f"wrote {path.relative_to(ROOT)}")
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 1 if result.get("errors") else 0


if __name__ == "__main__":
    raise SystemExit(main())
