"""A starting worker and a reconnecting one: no queue row stays locked while an
encoder loads, and the reconnect backoff starts again once the worker has served."""

import logging
import re
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg import errors

from helpers import FAST_RETRY, assert_invariant, background_worker, embeddings, one, wait_for
from vectorkeep.db.records import ModelVersion
from vectorkeep.workers import encoder_cache
from vectorkeep.workers.embed import RetryPolicy
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.jobs.runner import JobRunner
from vectorkeep.workers.worker import WorkerSettings

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
    with background_worker(db_url, EncoderCache(), WorkerSettings(retry=FAST_RETRY, poll_interval=0.2)):
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
    # A kind the database knows (another release's) and this worker does not.
    conn.execute(
        "INSERT INTO vk.model_kinds (kind, role, trainable, loadable, description) "
        "VALUES ('no-such-kind', 'encoder', false, true, 'a kind of another release')"
    )
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('mystery', 1, 'no-such-kind', 384)")
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    conn.execute("SELECT vk.attach('notes', 'id', 'body', 'mystery@1')")
    conn.execute("INSERT INTO notes VALUES (1, 'hello')")
    settings = WorkerSettings(retry=RetryPolicy(max_attempts=1, backoff_seconds=0.0), poll_interval=0.2)
    with background_worker(db_url, EncoderCache(), settings):
        assert slow_loads.started.wait(60), "the worker never started loading the encoder"
        assert update_without_waiting(conn, "UPDATE notes SET body = 'hello again' WHERE id = 1") < 1.0
        # The load fails (an unknown kind): the row fails with the reason, and dies after its one attempt.
        wait_for(lambda: one(conn, "SELECT count(*) FROM vk.queue WHERE dead") == 1, 60, "the row to fail")
    assert one(conn, "SELECT count(*) FROM vk.queue") == 1
    assert "'no-such-kind'" in one(conn, "SELECT last_error FROM vk.queue")
    assert embeddings(conn, "notes") == {}


RECONNECTING = re.compile(r"reconnecting in ([0-9.]+)s")


def reconnect_delays(caplog: pytest.LogCaptureFixture, logger: str) -> list[float]:
    return [
        float(m.group(1))
        for r in list(caplog.records)
        if r.name == logger and (m := RECONNECTING.search(r.getMessage())) is not None
    ]


def terminate(conn: psycopg.Connection, application: str, idle_after: str | None = None) -> int:
    """Terminate this database's backends whose application_name is LIKE application
    (with idle_after, only those idle after a query LIKE it); how many."""
    sql = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name LIKE %s AND pid <> pg_backend_pid()"
    )
    if idle_after is None:
        return int(one(conn, sql, (application,)))
    return int(one(conn, sql + " AND state = 'idle' AND query LIKE %s", (application, idle_after)))


def test_the_worker_reconnects_promptly_after_each_of_two_failures(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="vectorkeep.workers.worker")
    logger = "vectorkeep.workers.worker"
    with background_worker(db_url, encoders, WorkerSettings(retry=FAST_RETRY, poll_interval=0.2)):
        for round_ in (1, 2):
            conn.execute("INSERT INTO vk.documents (body) VALUES (%s)", (f"served before failure {round_}",))
            # Embedded: the worker has connected and served since the last failure.
            wait_for(lambda r=round_: len(embeddings(conn)) == r, 30, f"row {round_}")  # type: ignore[misc]
            assert terminate(conn, "vectorkeep %") == 3  # its LISTEN and its two work connections
            wait_for(lambda r=round_: len(reconnect_delays(caplog, logger)) == r, 30, f"failure {round_}")  # type: ignore[misc]
        conn.execute("INSERT INTO vk.documents (body) VALUES ('after both failures')")
        wait_for(lambda: len(embeddings(conn)) == 3, 30, "the worker to reconnect")
    # Each failure came after the worker had served again: each waits the first delay, none a doubled one.
    assert reconnect_delays(caplog, logger) == [0.5, 0.5]


def test_the_job_runner_reconnects_promptly_after_each_of_two_failures(
    conn: psycopg.Connection, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="vectorkeep.workers.jobs.runner")
    logger = "vectorkeep.workers.jobs.runner"
    runner = JobRunner(db_url, poll_interval=0.2, name="startup-test-jobs")
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        for round_ in (1, 2):
            # Killed once it has connected and claimed (its last query a claim): it has served.
            wait_for(
                lambda: terminate(conn, "vectorkeep jobs %", "%claim_job_v1%") == 1,
                30,
                f"the runner to connect and claim {round_}",
            )
            wait_for(lambda r=round_: len(reconnect_delays(caplog, logger)) == r, 30, f"failure {round_}")  # type: ignore[misc]
        wait_for(
            lambda: (
                one(conn, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'vectorkeep jobs %'") == 1
            ),
            30,
            "the runner to reconnect",
        )
    finally:
        runner.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert reconnect_delays(caplog, logger) == [0.5, 0.5]
