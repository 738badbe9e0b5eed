"""Worker processes: LISTEN and poll, several at once, SIGTERM and SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from helpers import FAST_RETRY, assert_invariant, background_worker, drain, embeddings, queue_size, wait_for
from vectorkeep.db import embedded
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.worker import WorkerSettings


def start_worker(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vectorkeep", "worker", *args],
        env={**os.environ, "VECTORKEEP_DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def count(conn: psycopg.Connection, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def n_embedded(conn: psycopg.Connection) -> int:
    return count(conn, "SELECT count(*) FROM vk.embeddings")


def unlocked_queue_rows(conn: psycopg.Connection) -> int:
    """Queue rows no transaction holds: all of them, once nothing is claimed."""
    with conn.transaction():
        return len(conn.execute("SELECT 1 FROM vk.queue FOR UPDATE SKIP LOCKED").fetchall())


def test_notify_wakes_a_waiting_worker(conn: psycopg.Connection, db_url: str, encoders: EncoderCache) -> None:
    # A poll interval far longer than the wait: only the NOTIFY can wake it.
    with background_worker(db_url, encoders, WorkerSettings(retry=FAST_RETRY, poll_interval=600)):
        time.sleep(0.5)
        conn.execute("INSERT INTO vk.documents (body) VALUES ('wake up')")
        wait_for(lambda: len(embeddings(conn)) == 1, 30, "the notified worker")


def test_a_row_whose_notify_was_debounced_is_still_picked_up_without_the_poll(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    # The second INSERT comes within 50 ms of the first one's notification, so
    # it sends none, and commits only once the worker has gone idle again: with
    # a 600 s poll only the worker's linger can find it.
    with background_worker(db_url, encoders, WorkerSettings(retry=FAST_RETRY, poll_interval=600)):
        time.sleep(0.5)
        with psycopg.connect(db_url, autocommit=True) as listener:
            listener.execute("LISTEN vk_queue")
            conn.execute("INSERT INTO vk.documents (body) VALUES ('first')")
            with conn.transaction():
                conn.execute("INSERT INTO vk.documents (body) VALUES ('second, unannounced')")
                wait_for(lambda: len(embeddings(conn)) == 1, 30, "the first row")
            assert len(list(listener.notifies(timeout=0.5))) == 1
        wait_for(lambda: len(embeddings(conn)) == 2, 30, "the lingering worker")
    assert_invariant(conn)


def test_poll_picks_up_work_whose_notify_was_lost(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    with background_worker(db_url, encoders, WorkerSettings(retry=FAST_RETRY, poll_interval=0.3)):
        time.sleep(0.5)
        # Row and queue entry written with triggers off: no NOTIFY is ever sent.
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute("INSERT INTO vk.documents (id, body) OVERRIDING SYSTEM VALUE VALUES (77, 'silent')")
            conn.execute("INSERT INTO vk.queue (collection_id, pk, model_id) VALUES (1, '77', 1)")
        wait_for(lambda: "77" in embeddings(conn), 30, "the polling worker")
    assert_invariant(conn)


def test_two_worker_processes_embed_every_row_exactly_once(conn: psycopg.Connection, db_url: str) -> None:
    conn.execute("INSERT INTO vk.documents (body) SELECT 'sentence number ' || g FROM generate_series(1, 300) g")
    workers = [start_worker(db_url, "--until-idle", "--json", "--batch-size", "16") for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err
    done = [json.loads(out)[0]["embedded"] for out, _ in outputs]
    # Each row was encoded by exactly one worker: the counts add up to the rows.
    assert sum(done) == 300, done
    assert len(embeddings(conn)) == 300
    assert queue_size(conn) == 0


def test_sigterm_finishes_the_batch_and_loses_nothing(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("INSERT INTO vk.documents (body) SELECT 'line ' || g FROM generate_series(1, 2000) g")
    worker = start_worker(db_url, "--batch-size", "8")
    wait_for(lambda: n_embedded(conn) > 0, 120, "the first batch")
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    embedded = n_embedded(conn)
    assert 0 < embedded < 2000
    # Every row is either embedded or still queued, and nothing is left claimed.
    assert embedded + queue_size(conn) == 2000
    assert unlocked_queue_rows(conn) == queue_size(conn)
    drain(db_url, encoders)
    assert_invariant(conn)


def test_sigkill_mid_batch_then_another_worker_finishes(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("INSERT INTO vk.documents (body) SELECT 'item ' || g FROM generate_series(1, 1000) g")
    for _ in range(2):
        worker = start_worker(db_url, "--batch-size", "32")
        before = n_embedded(conn)
        wait_for(lambda b=before: n_embedded(conn) > b, 120, "a batch")  # type: ignore[misc]
        worker.kill()
        worker.communicate(timeout=30)
        # The killed transaction rolled back: no row stays locked.
        wait_for(lambda: unlocked_queue_rows(conn) == queue_size(conn), 30, "the locks to go")
        assert n_embedded(conn) + queue_size(conn) == 1000
    drain(db_url, encoders)
    assert queue_size(conn) == 0
    rows = embeddings(conn)
    assert len(rows) == 1000
    assert count(conn, "SELECT count(DISTINCT pk) FROM vk.embeddings") == 1000


def test_worker_reconnects_after_its_connections_are_killed(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    with background_worker(
        db_url, encoders, WorkerSettings(retry=FAST_RETRY, poll_interval=0.2, reconnect_max_delay=0.5)
    ):
        conn.execute("INSERT INTO vk.documents (body) VALUES ('before')")
        wait_for(lambda: n_embedded(conn) == 1, 30, "the first row")
        killed = count(
            conn,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name LIKE 'vectorkeep %' AND pid <> pg_backend_pid()",
        )
        assert killed == 3  # the LISTEN connection and the two work connections (overlap)
        conn.execute("INSERT INTO vk.documents (body) VALUES ('after')")
        wait_for(lambda: n_embedded(conn) == 2, 30, "the worker to reconnect")


def test_worker_survives_a_database_restart(
    embedded_pgdata: Path | None, server_url: str, db_url: str, encoders: EncoderCache
) -> None:
    if embedded_pgdata is None:
        pytest.skip("restarts only the embedded test server")
    with background_worker(
        db_url, encoders, WorkerSettings(retry=FAST_RETRY, poll_interval=0.2, reconnect_max_delay=0.5)
    ):
        with psycopg.connect(db_url, autocommit=True) as c:
            c.execute("INSERT INTO vk.documents (body) VALUES ('before restart')")
            wait_for(lambda: n_embedded(c) == 1, 30, "the first row")
        embedded.restart(embedded_pgdata)
        assert embedded.start(embedded_pgdata).url == server_url
        with psycopg.connect(db_url, autocommit=True) as c:
            c.execute("INSERT INTO vk.documents (body) VALUES ('after restart')")
            wait_for(lambda: n_embedded(c) == 2, 60, "the worker to reconnect")
