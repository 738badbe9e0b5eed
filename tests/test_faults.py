"""Fault scenarios with real worker processes, each ending with the invariant:
every row with text has exactly one current vector per model version, made
from its current text, and nothing is left queued or claimed."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from helpers import FAST_RETRY, assert_invariant, drain, wait_for, whole_text_chunk
from vectorkeep.db import embedded, registry
from vectorkeep.db.connect import connect
from vectorkeep.sql import query
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.jobs.runner import JobRunner
from vectorkeep.workers.worker import Worker, WorkerSettings


def worker_process(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vectorkeep", "worker", "--batch-size", "16", "--max-attempts", "50", *args],
        env={**os.environ, "VECTORKEEP_DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def n_embedded(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM vk.embeddings").fetchone()
    return int(row[0]) if row else 0


@contextmanager
def inserting(url: str, rows: int, seconds: float) -> Iterator[threading.Thread]:
    """A client inserting `rows` rows, spread over `seconds`, on its own connection (bounded in count and time)."""

    def run() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(rows):
                conn.execute("INSERT INTO vk.documents (body) VALUES (%s)", (f"row {i} written during the fault",))
                time.sleep(seconds / rows)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        thread.join(timeout=seconds + 30)


def test_sigkill_mid_batch_repeatedly_while_inserts_continue(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("INSERT INTO vk.documents (body) SELECT 'backlog row ' || g FROM generate_series(1, 300) g")
    with inserting(db_url, 150, 6.0):
        for _ in range(3):
            worker = worker_process(db_url)
            before = n_embedded(db_url)
            wait_for(lambda b=before: n_embedded(db_url) > b, 120, "a committed batch")  # type: ignore[misc]
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
    drain(db_url, encoders)
    assert_invariant(conn)


def test_database_restart_and_killed_connections_while_worker_processes_run(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache, embedded_pgdata: Path | None
) -> None:
    conn.execute("INSERT INTO vk.documents (body) SELECT 'before the faults ' || g FROM generate_series(1, 200) g")
    workers = [worker_process(db_url, "--poll-interval", "0.2") for _ in range(2)]
    try:
        wait_for(lambda: n_embedded(db_url) > 20, 120, "the workers to start")
        with psycopg.connect(db_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'vectorkeep %' AND pid <> pg_backend_pid()"
            )
        if embedded_pgdata is not None:
            embedded.restart(embedded_pgdata)
        with psycopg.connect(db_url, autocommit=True) as after:
            after.execute(
                "INSERT INTO vk.documents (body) SELECT 'after the faults ' || g FROM generate_series(1, 50) g"
            )
        wait_for(lambda: n_embedded(db_url) == 250, 180, "the workers to reconnect and finish")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            assert w.wait(timeout=60) == 0
    with connect(db_url, autocommit=True) as fresh:
        assert_invariant(fresh)


def test_update_while_the_old_text_is_being_embedded(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("INSERT INTO vk.documents (id, body) OVERRIDING SYSTEM VALUE VALUES (1, 'the old text')")
    encoder = encoders.get(conn, registry.by_spec(conn, "minilm@1"))
    with psycopg.connect(db_url) as worker:
        from pgvector.psycopg import register_vector

        register_vector(worker)
        claimed = worker.execute(query("claim"), {"batch_size": 10}).fetchall()
        assert [(c[1], c[4]) for c in claimed] == [("1", "the old text")]
        # The application rewrites the text while the worker encodes the old one.
        updating = threading.Thread(
            target=conn.execute, args=("UPDATE vk.documents SET body = 'the new text' WHERE id = 1",)
        )
        updating.start()
        time.sleep(0.3)
        key = {"collection_id": 1, "pk": "1", "model_id": 1}
        vector = encoder.encode(["the old text"])[0]
        worker.execute(query("upsert_chunk"), whole_text_chunk(key, vector, "the old text"))
        worker.execute(query("finish_row"), {**key, "chunks": 1})
        worker.commit()
        updating.join(timeout=10)
        assert not updating.is_alive()
    # The old text's vector was written, but the row is queued again ...
    assert conn.execute("SELECT count(*) FROM vk.queue").fetchone() == (1,)
    drain(db_url, encoders)
    # ... and the current vector is the new text's.
    assert conn.execute("SELECT body FROM vk.embeddings").fetchone() == ("the new text",)
    assert_invariant(conn)


def test_a_long_idle_transaction_elsewhere_does_not_stop_the_queue(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    with psycopg.connect(db_url) as idle:
        idle.execute("SELECT count(*) FROM vk.documents")  # opens a transaction and leaves it idle
        idle.execute("SELECT count(*) FROM vk.queue")
        for round_ in range(3):
            conn.execute(
                "INSERT INTO vk.documents (body) SELECT %s || g FROM generate_series(1, 60) g", (f"churn {round_} ",)
            )
            drain(db_url, encoders)
            assert conn.execute("SELECT count(*) FROM vk.queue").fetchone() == (0,)
        assert idle.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert_invariant(conn)


def test_a_reembed_whose_worker_dies_is_taken_over_and_resumed(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vk.models (name, version, kind, dim, params) VALUES ('mini2', 1, 'sentence-transformers', 384,"
            ' \'{"source": "sentence-transformers/all-MiniLM-L6-v2"}\')'
        )
        job_id = conn.execute("SELECT vk.reembed('documents', 'mini2@1')").fetchone()[0]  # type: ignore[index]
        conn.execute("UPDATE vk.jobs SET params = '{\"page_size\": 20}' WHERE id = %s", (job_id,))

        def scanned() -> int:
            row = conn.execute("SELECT (progress ->> 'scanned')::int FROM vk.jobs WHERE id = %s", (job_id,)).fetchone()
            return int(row[0] or 0) if row else 0

        dying = worker_process(corpus_url, "--lease", "2")
        try:
            wait_for(lambda: scanned() >= 100, 180, "the re-embed to be under way")
        finally:
            dying.send_signal(signal.SIGKILL)
            dying.wait(timeout=30)
        left_at = scanned()
        assert left_at < 400
        time.sleep(2.5)  # its lease expires

        queue = Worker(corpus_url, WorkerSettings(retry=FAST_RETRY), encoders=encoders)
        thread = threading.Thread(target=queue.run, daemon=True)
        thread.start()
        try:
            assert JobRunner(corpus_url, lease_seconds=5).run(until_idle=True) == [job_id]
        finally:
            queue.stop()
            thread.join(timeout=60)
        row = conn.execute("SELECT status, attempts, progress FROM vk.jobs WHERE id = %s", (job_id,)).fetchone()
        assert row is not None
        status, attempts, progress = row
        assert (status, attempts) == ("succeeded", 2)
        assert progress["scanned"] == 400  # resumed from where it stopped: the pages add up once
        drain(corpus_url, encoders)
        assert_invariant(conn)


def test_invariant_catches_a_stale_vector(conn: psycopg.Connection, db_url: str, encoders: EncoderCache) -> None:
    """The invariant itself can fail: a vector left for old text is caught."""
    conn.execute("INSERT INTO vk.documents (body) VALUES ('original')")
    drain(db_url, encoders)
    assert_invariant(conn)
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")  # triggers off: nothing queued
        conn.execute("UPDATE vk.documents SET body = 'changed behind our back'")
    with pytest.raises(AssertionError, match="0 current vectors"):
        assert_invariant(conn)
