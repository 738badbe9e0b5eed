"""A worker's Prometheus metrics, scraped over HTTP from a real worker serving a real database."""

import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psycopg
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from helpers import FAST_RETRY, one, wait_for
from vectorkeep.workers import kinds
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.metrics import Metrics, MetricsAddress, MetricsServer
from vectorkeep.workers.service import Service
from vectorkeep.workers.worker import Worker, WorkerSettings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return parse(response.read().decode())


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@contextmanager
def serving_worker(url: str, encoders: EncoderCache) -> Iterator[int]:
    """A worker's service (queue only) serving metrics on 127.0.0.1; yields the port, and checks
    at the end that the metrics server stopped with the worker."""
    port = free_port()
    service = Service(
        url,
        WorkerSettings(retry=FAST_RETRY, poll_interval=0.2),
        jobs=False,
        text_queries=False,
        encoders=encoders,
        metrics=MetricsAddress(port, "127.0.0.1"),
    )
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:

        def up() -> bool:
            try:
                return value(scrape(port), "vectorkeep_database_up") == 1
            except OSError:
                return False

        wait_for(up, 10, "the worker's metrics endpoint")
        yield port
    finally:
        service.stop()
        thread.join(timeout=30)
        assert not thread.is_alive()
    with pytest.raises(OSError):
        scrape(port)  # stopped with the worker


def test_queue_depth_drops_to_zero_and_embedded_rows_are_counted(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("INSERT INTO vk.documents (body) SELECT 'note number ' || i FROM generate_series(1, 5) i")
    # Before any worker: the collector reads the queue at scrape time.
    before = parse(generate_latest(Metrics(db_url).registry).decode())
    assert value(before, "vectorkeep_queue_depth", collection="documents", model="minilm@1") == 5
    assert value(before, "vectorkeep_queue_dead", collection="documents", model="minilm@1") == 0
    age = value(before, "vectorkeep_queue_oldest_ready_age_seconds", collection="documents", model="minilm@1")
    assert age is not None and age >= 0

    with serving_worker(db_url, encoders) as port:

        def drained() -> bool:
            return value(scrape(port), "vectorkeep_rows_embedded_total", model="minilm@1") == 5

        wait_for(drained, 15, "5 rows embedded")
        after = scrape(port)
    assert value(after, "vectorkeep_queue_depth", collection="documents", model="minilm@1") == 0
    assert value(after, "vectorkeep_queue_oldest_age_seconds", collection="documents", model="minilm@1") == 0
    assert value(after, "vectorkeep_database_up") == 1
    batches = value(after, "vectorkeep_batches_total")
    assert batches is not None and batches >= 1
    assert value(after, "vectorkeep_batch_seconds_count") == batches
    encoded = value(after, "vectorkeep_encode_seconds_count", model="minilm@1")
    assert encoded is not None and encoded >= 1
    assert value(after, "vectorkeep_rows_failed_total", model="minilm@1") is None  # no failure, no series


class RefusingEncoder:
    """An encoder that refuses every text: its rows fail, then die."""

    def __init__(self, params: dict, artifact: bytes | None = None) -> None:
        pass

    @property
    def dim(self) -> int:
        return 3

    def encode(self, texts: list[str]) -> np.ndarray:
        raise ValueError("this encoder refuses every text")


def test_a_dead_row_shows_with_its_collection_and_model(
    conn: psycopg.Connection, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(kinds.EXTRA_LOADERS, "refusing-test", RefusingEncoder)
    conn.execute(
        "INSERT INTO vk.model_kinds (kind, role, trainable, loadable, description) "
        "VALUES ('refusing-test', 'encoder', false, true, 'refuses every text')"
    )
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('refuser', 1, 'refusing-test', 3)")
    conn.execute("CREATE TABLE msgs (id int PRIMARY KEY, body text)")
    conn.execute("SELECT vk.attach('msgs', 'id', 'body', 'refuser@1')")
    conn.execute("INSERT INTO msgs VALUES (1, 'never embedded')")

    with serving_worker(db_url, EncoderCache()) as port:

        def dead() -> bool:
            return value(scrape(port), "vectorkeep_queue_dead", collection="msgs", model="refuser@1") == 1

        wait_for(dead, 15, "the row to die")
        samples = scrape(port)
    assert value(samples, "vectorkeep_queue_depth", collection="msgs", model="refuser@1") == 0
    assert value(samples, "vectorkeep_rows_failed_total", model="refuser@1") == FAST_RETRY.max_attempts
    # The other collection is listed too, with nothing queued.
    assert value(samples, "vectorkeep_queue_dead", collection="documents", model="minilm@1") == 0


# A row the claim fails is dead after this many attempts (vk._claim), whatever the worker's retry policy.
CLAIM_ATTEMPTS = 5


def test_rows_failed_inside_the_claim_are_counted(conn: psycopg.Connection, db_url: str) -> None:
    """Finding 3: a row whose text (or metadata) expression raises fails inside vk.claim_v1, which never
    returns it; vectorkeep_rows_failed_total stayed empty after such rows failed 5 times each. The claims'
    metadata writes to the rows they return are no failures, and a claim rolled back to load an encoder
    (a fresh cache) fails nothing."""
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, body text)")
    conn.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    metadata = "jsonb_build_object('x', 10 / (id - 4))"
    conn.execute(
        "SELECT vk.attach('t', 'id', '(10 / (id - 3))::text || body', 'minilm@1', metadata => %s)", (metadata,)
    )
    conn.execute("INSERT INTO t VALUES (3, 'text raises'), (4, 'metadata raises')")
    metrics = Metrics()
    for _ in range(CLAIM_ATTEMPTS):
        conn.execute("UPDATE vk.queue SET run_after = now() WHERE NOT dead")
        Worker(db_url, WorkerSettings(retry=FAST_RETRY), encoders=EncoderCache(), metrics=metrics).run(until_idle=True)
    dead = conn.execute("SELECT pk, attempts, dead, last_error FROM vk.queue ORDER BY pk").fetchall()
    assert dead == [
        ("3", 5, True, "text expression: division by zero"),
        ("4", 5, True, "metadata expression: division by zero"),
    ]
    samples = parse(generate_latest(metrics.registry).decode())
    assert value(samples, "vectorkeep_rows_failed_total", model="minilm@1") == 2 * CLAIM_ATTEMPTS
    assert value(samples, "vectorkeep_rows_embedded_total", model="minilm@1") == 2


def test_running_jobs_progress(conn: psycopg.Connection, db_url: str) -> None:
    collection_id = one(conn, "SELECT vk.collection_id('documents')")
    model_id = one(conn, "SELECT id FROM vk.models WHERE name = 'minilm'")
    job_id = one(conn, "SELECT vk.submit_job_v1('reembed', '{}', %s, %s)", (collection_id, model_id))
    assert one(conn, "SELECT id FROM vk.claim_job_v1('test-runner', 60, ARRAY['reembed'])") == job_id
    conn.execute(
        'SELECT vk.heartbeat_job_v1(%s, \'test-runner\', 60, \'{"phase": "embed", "done": 40, "total": 100}\')',
        (job_id,),
    )
    queued = one(conn, "SELECT vk.submit_job_v1('reembed', '{}', %s, %s)", (collection_id, model_id))

    samples = parse(generate_latest(Metrics(db_url).registry).decode())
    labels = {"job_id": str(job_id), "kind": "reembed"}
    assert value(samples, "vectorkeep_job_progress_done", **labels) == 40
    assert value(samples, "vectorkeep_job_progress_total", **labels) == 100
    # Only running jobs: a queued one has no progress yet.
    assert value(samples, "vectorkeep_job_progress_done", job_id=str(queued), kind="reembed") is None


def test_a_worker_role_may_read_what_is_scraped(conn: psycopg.Connection, login: Callable[[str], str]) -> None:
    collection_id = one(conn, "SELECT vk.collection_id('documents')")
    job_id = one(conn, "SELECT vk.submit_job_v1('reembed', '{}', %s)", (collection_id,))
    conn.execute("SELECT vk.claim_job_v1('test-runner', 60)")
    conn.execute("SELECT vk.heartbeat_job_v1(%s, 'test-runner', 60, '{\"done\": 7}')", (job_id,))
    conn.execute("INSERT INTO vk.documents (body) VALUES ('queued')")
    samples = parse(generate_latest(Metrics(login("vk_worker")).registry).decode())
    assert value(samples, "vectorkeep_database_up") == 1
    assert value(samples, "vectorkeep_queue_depth", collection="documents", model="minilm@1") == 1
    assert value(samples, "vectorkeep_job_progress_done", job_id=str(job_id), kind="reembed") == 7
    assert value(samples, "vectorkeep_job_progress_total", job_id=str(job_id), kind="reembed") is None  # not said


def test_an_unreachable_database_reads_as_down_and_the_server_keeps_serving() -> None:
    port = free_port()
    # Two workers' metrics in one process: each has a registry of its own.
    reachable_never = Metrics("postgresql://nobody@127.0.0.1:1/nothing")
    other = Metrics("postgresql://nobody@127.0.0.1:1/nothing")
    assert reachable_never.registry is not other.registry
    server = MetricsServer(reachable_never.registry, MetricsAddress(port, "127.0.0.1"))
    try:
        for _ in range(2):
            samples = scrape(port)
            assert value(samples, "vectorkeep_database_up") == 0
            assert not any(name == "vectorkeep_queue_depth" for name, _ in samples)
    finally:
        server.stop()
    with pytest.raises(OSError):
        scrape(port)


def test_the_console_script_serves_metrics_until_sigterm(db_url: str) -> None:
    port = free_port()
    command = [str(Path(sys.executable).parent / "vectorkeep"), "--database-url", db_url, "worker"]
    # No --metrics-host: by default only this machine may scrape (the log line below says where).
    command += ["--no-jobs", "--no-text-queries", "--metrics-port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:

        def up() -> bool:
            assert process.poll() is None, process.communicate()
            try:
                return value(scrape(port), "vectorkeep_database_up") == 1
            except OSError:
                return False

        wait_for(up, 60, "the worker's metrics endpoint")
        assert value(scrape(port), "vectorkeep_queue_depth", collection="documents", model="minilm@1") == 0
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert f"serving metrics on http://127.0.0.1:{port}/metrics" in stderr
    with pytest.raises(OSError):
        scrape(port)
