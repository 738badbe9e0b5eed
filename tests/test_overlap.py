"""The overlapped worker: batch N+1 is encoded while batch N is written, and every row is still
embedded exactly once, even when its connections die mid-batch."""

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

from helpers import FAST_RETRY, assert_invariant, embeddings, one, queue_size
from vectorkeep.db.connect import connect
from vectorkeep.workers import kinds
from vectorkeep.workers.embed import BatchResult
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.worker import Worker, WorkerSettings

ROWS, BATCH = 64, 8
# A test-only trigger: every write to vk.embeddings waits while the test holds this advisory lock.
HOLD_WRITES = """
CREATE FUNCTION public.hold_writes() RETURNS trigger LANGUAGE plpgsql SET lock_timeout = '20s' AS $$
BEGIN
    PERFORM pg_advisory_lock_shared(4242);
    PERFORM pg_advisory_unlock_shared(4242);
    RETURN NULL;
END $$;
CREATE TRIGGER hold_writes AFTER INSERT ON vk.embeddings FOR EACH STATEMENT EXECUTE FUNCTION public.hold_writes();
"""


class HashEncoder:
    """A unit vector from each text's hash (no model, so the test is about the worker), which calls
    `on_batch` with the number of texts before encoding a batch (not the one-text fingerprint probe)."""

    on_batch: Callable[[int], None] = staticmethod(lambda n: None)

    def __init__(self, params: dict[str, Any], artifact: bytes | None = None) -> None:
        self.dim = 16

    def encode(self, texts: list[str]) -> np.ndarray:
        if len(texts) > 1:
            HashEncoder.on_batch(len(texts))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out


@pytest.fixture
def notes(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A table of ROWS queued rows, attached with the hash encoder."""
    monkeypatch.setitem(kinds.EXTRA_LOADERS, "hash-test", HashEncoder)
    conn.execute(
        "INSERT INTO vk.model_kinds (kind, role, trainable, loadable, description) "
        "VALUES ('hash-test', 'encoder', false, true, 'a unit vector from the hash of the text')"
    )
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('hash', 1, 'hash-test', 16)")
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    conn.execute("SELECT vk.attach('notes', 'id', 'body', 'hash@1')")
    conn.execute("INSERT INTO notes SELECT g, 'note number ' || g FROM generate_series(1, %s) g", (ROWS,))
    yield
    HashEncoder.on_batch = staticmethod(lambda n: None)


def committed(conn: psycopg.Connection) -> int:
    return int(one(conn, "SELECT count(*) FROM vk.embeddings"))


def drain(url: str, *, overlap: bool) -> tuple[Worker, list[BatchResult]]:
    batches: list[BatchResult] = []
    settings = WorkerSettings(batch_size=BATCH, retry=FAST_RETRY, overlap=overlap, reconnect_max_delay=0.5)
    worker = Worker(url, settings, encoders=EncoderCache(), on_batch=batches.append)
    worker.run(until_idle=True)
    return worker, batches


def assert_all_embedded_once(conn: psycopg.Connection) -> None:
    assert len(embeddings(conn, "notes")) == ROWS
    assert one(conn, "SELECT count(*) FROM vk.embeddings") == ROWS  # one chunk each, no duplicate
    assert queue_size(conn) == 0
    assert_invariant(conn)


def test_the_next_batch_is_encoded_before_the_last_one_commits(
    conn: psycopg.Connection, db_url: str, notes: None
) -> None:
    # Writes to vk.embeddings wait on the lock this connection holds until the second batch's encode
    # begins: that encode can only begin if it does not wait for the first batch's commit.
    conn.execute(HOLD_WRITES)
    seen: list[tuple[int, int]] = []  # (rows handed to the encoder before this batch, rows committed then)
    with connect(db_url, autocommit=True) as locker:
        locker.execute("SELECT pg_advisory_lock(4242)")

        def on_batch(n: int) -> None:
            seen.append((len(seen) * BATCH, committed(conn)))
            if len(seen) == 2:
                locker.execute("SELECT pg_advisory_unlock(4242)")

        HashEncoder.on_batch = staticmethod(on_batch)
        worker, batches = drain(db_url, overlap=True)
    assert seen[:2] == [(0, 0), (BATCH, 0)], seen  # batch 2 encoded while batch 1 was still being written
    assert len(seen) == ROWS // BATCH
    # One write in flight: each batch has committed before the encode of the next but one.
    assert all(done >= before - BATCH for before, done in seen), seen
    assert worker.stats.embedded == ROWS and [b.embedded for b in batches] == [BATCH] * (ROWS // BATCH)
    assert_all_embedded_once(conn)


def test_without_overlap_each_batch_commits_before_the_next_is_encoded(
    conn: psycopg.Connection, db_url: str, notes: None
) -> None:
    seen: list[tuple[int, int]] = []
    HashEncoder.on_batch = staticmethod(lambda n: seen.append((len(seen) * BATCH, committed(conn))))
    worker, _ = drain(db_url, overlap=False)
    assert seen == [(i * BATCH, i * BATCH) for i in range(ROWS // BATCH)]
    assert worker.stats.embedded == ROWS
    assert_all_embedded_once(conn)


def test_connections_killed_with_two_batches_in_flight_lose_nothing(
    conn: psycopg.Connection, db_url: str, notes: None
) -> None:
    calls: list[int] = []
    kills: list[int] = []

    def on_batch(n: int) -> None:
        # The third batch is encoded while the second is written: end both work connections, once.
        calls.append(n)
        if len(calls) == 3:
            kills.append(
                one(
                    conn,
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'vectorkeep worker %'",
                )
            )

    HashEncoder.on_batch = staticmethod(on_batch)
    drain(db_url, overlap=True)
    assert kills == [2]
    assert_all_embedded_once(conn)
