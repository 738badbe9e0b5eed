"""A starting worker: no queue row stays locked while an encoder loads."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import errors

from helpers import FAST_RETRY, assert_invariant, embeddings, one, wait_for
from vectorkeep.db.records import ModelVersion
from vectorkeep.workers import encoder_cache
from vectorkeep.workers.embed import RetryPolicy
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.worker import Worker, WorkerSettings

LOAD_SECONDS = 3.0


class SlowLoads:
    """encoder_cache.load_encoder, each call LOAD_SECONDS slower: the real encoder, loaded the real way."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = threading.Event()
        self.calls: list[str] = []
        real = encoder_cache.load_encoder

        def load(model: ModelVersion, artifact: bytes | None) -> Encoder:
            self.calls.append(model.label)
            self.started.set()
            time.sleep(LOAD_SECONDS)
            return real(model, artifact)

        monkeypatch.setattr(encoder_cache, "load_encoder", load)


@pytest.fixture
def slow_loads(monkeypatch: pytest.MonkeyPatch) -> SlowLoads:
    return SlowLoads(monkeypatch)


@contextmanager
def worker_thread(url: str, settings: WorkerSettings, encoders: EncoderCache) -> Iterator[Worker]:
    worker = Worker(url, settings, encoders=encoders)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
        assert not thread.is_alive()


def update_without_waiting(conn: psycopg.Connection, sql: str, params: Any = None) -> float:
    """Run an application's UPDATE that may not wait on a lock (lock_timeout 1 s); its duration."""
    conn.execute("SET lock_timeout = '1s'")
    started = time.monotonic()
    try:
        conn.execute(sql, params)
    except errors.LockNotAvailable as exc:
        raise AssertionError(f"the application's UPDATE waited on a lock while the encoder loaded: {exc}") from exc
    finally:
        conn.execute("RESET lock_timeout")
    return time.monotonic() - started


def test_an_update_does_not_wait_while_a_fresh_worker_loads_its_encoder(
    conn: psycopg.Connection, db_url: str, slow_loads: SlowLoads
) -> None:
    conn.execute("INSERT INTO vk.documents (id, body) OVERRIDING SYSTEM VALUE VALUES (1, 'the old text')")
    # A fresh cache: this worker has not loaded minilm@1 yet.
    with worker_thread(db_url, WorkerSettings(retry=FAST_RETRY, poll_interval=0.2), EncoderCache()):
        assert slow_loads.started.wait(60), "the worker never started loading its encoder"
        seconds = update_without_waiting(conn, "UPDATE vk.documents SET body = 'the new text' WHERE id = 1")
        assert seconds < 1.0
        wait_for(
            lambda: {pk: r["body"] for pk, r in embeddings(conn).items()} == {"1": "the new text"},
            60,
            "the new text's vector",
        )
    assert slow_loads.calls == ["minilm@1"]  # loaded once, then served from the cache
    assert_invariant(conn)


def test_a_version_whose_encoder_cannot_load_fails_its_rows_without_holding_them(
    conn: psycopg.Connection, db_url: str, slow_loads: SlowLoads
) -> None:
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('mystery', 1, 'no-such-kind', 384)")
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    conn.execute("SELECT vk.attach('notes', 'id', 'body', 'mystery@1')")
    conn.execute("INSERT INTO notes VALUES (1, 'hello')")
    settings = WorkerSettings(retry=RetryPolicy(max_attempts=1, backoff_seconds=0.0), poll_interval=0.2)
    with worker_thread(db_url, settings, EncoderCache()):
        assert slow_loads.started.wait(60), "the worker never started loading the encoder"
        assert update_without_waiting(conn, "UPDATE notes SET body = 'hello again' WHERE id = 1") < 1.0
        # The load fails (an unknown kind): the row fails with the reason, and dies after its one attempt.
        wait_for(lambda: one(conn, "SELECT count(*) FROM vk.queue WHERE dead") == 1, 60, "the row to fail")
    assert one(conn, "SELECT count(*) FROM vk.queue") == 1
    assert "'no-such-kind'" in one(conn, "SELECT last_error FROM vk.queue")
    assert embeddings(conn, "notes") == {}
