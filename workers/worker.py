"""The embedding worker: wait for a NOTIFY or the poll interval, drain the queue, repeat.

NOTIFY is only a wake-up hint: the worker also polls, so a notification lost
(no listener at the time, a pooler that drops LISTEN, a reconnect) delays work
by at most one poll interval and never loses it.

With overlap (the default) the worker holds two work connections and writes
each batch in a background thread while it claims and encodes the next one
(workers/overlap.py says why and how); without it, claim, encode, write and
commit run one after the other on one connection.
"""

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from vectorkeep.db import contract
from vectorkeep.db.connect import connect
from vectorkeep.sql import query
from vectorkeep.workers.counts import WorkerStats
from vectorkeep.workers.embed import BatchResult, RetryPolicy, after_write, claim_batch
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.map_coordinates import follow_batch
from vectorkeep.workers.metrics import Metrics, recording
from vectorkeep.workers.overlap import WriteBehind

log = logging.getLogger(__name__)

# The batches this loop runs move their rows on their maps (the batch itself knows no maps).
after_write(follow_batch)

CHANNEL = "vk_queue"

# A session notifies at most once per 50 ms (sql/0006_fast_queue/10_wake.sql):
# after any work the worker polls every LINGER_POLL seconds for LINGER seconds,
# so a row whose notification was skipped waits about 50 ms, not a full poll.
LINGER = 0.5
LINGER_POLL = 0.05

# The wait before the first reconnect after the worker has served; it doubles
# with each failure in a row, up to reconnect_max_delay.
RECONNECT_DELAY = 0.5


@dataclass
class WorkerSettings:
    batch_size: int = 64
    poll_interval: float = 1.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    reconnect_max_delay: float = 10.0
    # Encode a batch while the last one is written (two work connections); off: one after the other.
    overlap: bool = True


class Worker:
    def __init__(
        self,
        url: str,
        settings: WorkerSettings | None = None,
        *,
        encoders: EncoderCache | None = None,
        on_batch: Callable[[BatchResult], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.url = url
        self.settings = settings or WorkerSettings()
        self.encoders = encoders or EncoderCache()
        self.on_batch = on_batch
        self.metrics = metrics  # what its batches record (workers/metrics.py)
        self.name = f"{socket.gethostname()}-{os.getpid()}"
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._active_at = float("-inf")
        self._served = False  # a claim went through on the current connections
        self._collect = False  # vk is distributed over Citus: collect captured keys before idling

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    def stop(self) -> None:
        """Ask the worker to finish its current batch and return."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, *, until_idle: bool = False) -> WorkerStats:
        """Work until stop() (or, with until_idle, until no row is ready).

        A failure waits RECONNECT_DELAY, doubled with each further failure in
        a row; a connection that served a batch starts the count again, so a
        database restart long ago does not slow the next reconnect.
        """
        delay = RECONNECT_DELAY
        while not self.stopping:
            self._served = False
            try:
                self._serve(until_idle)
                return self.stats
            except psycopg.OperationalError as exc:
                if self.stopping:
                    break
                delay = RECONNECT_DELAY if self._served else delay
                log.warning("database connection lost (%s); reconnecting in %.1fs", exc, delay)
            except contract.SchemaMismatch:
                raise
            except Exception:
                # A bug or an unexpected database error: the batch rolled back
                # and its rows are free; keep serving the queue rather than die.
                delay = RECONNECT_DELAY if self._served else delay
                log.exception("worker %s: batch failed; retrying in %.1fs", self.name, delay)
            self._stop.wait(delay)
            delay = min(delay * 2, self.settings.reconnect_max_delay)
        return self.stats

    def _serve(self, until_idle: bool) -> None:
        with (
            connect(self.url, autocommit=True, application_name=f"vectorkeep listen {self.name}") as listener,
            connect(self.url, application_name=f"vectorkeep worker {self.name}") as conn,
            connect(self.url, application_name=f"vectorkeep worker {self.name}")
            if self.settings.overlap
            else contextlib.nullcontext(None) as other,
            recording(self.metrics),
        ):
            contract.check(conn)
            listener.execute(query("listen"))
            log.info("worker %s listening on %s", self.name, CHANNEL)
            # On Citus a distributed table's triggers capture on the node holding the shard, where no
            # NOTIFY reaches this listener: before idling, a worker moves what they captured to the queue.
            self._collect = bool(listener.execute(query("distributed")).fetchone()[0])  # type: ignore[index]
            self._drain(listener, [conn] if other is None else [conn, other], until_idle)

    def _drain(self, listener: psycopg.Connection, conns: list[psycopg.Connection], until_idle: bool) -> None:
        """Claim and encode a batch on each connection in turn, and commit it; with two
        connections, each batch is written in the background while the next is encoded."""
        writes = WriteBehind() if len(conns) > 1 else None
        try:
            for conn in itertools.cycle(conns):
                if self.stopping:
                    break
                batch = claim_batch(conn, self.encoders, batch_size=self.settings.batch_size, retry=self.settings.retry)
                self._served = True
                previous: BatchResult | None = None
                if writes is not None:
                    # The last batch commits before this one's writes go: one write in flight.
                    previous = writes.wait()
                    self._done(previous)
                    if batch.result.claimed:
                        writes.submit(conn, batch)
                        continue
                # (An empty claim commits too: it fails rows whose text expression raised.)
                if batch.commit(conn).claimed:
                    self._done(batch.result)
                    continue
                if previous is not None:
                    # This claim ran while the last batch was being written: its rows were locked
                    # then, and a failed one may be ready again now. Not idle yet.
                    continue
                if self._collect and listener.execute(query("collect_captured")).fetchone()[0]:  # type: ignore[index]
                    continue
                if until_idle:
                    return
                self._wait(listener)
        finally:
            if writes is not None:
                try:
                    # The batch in flight commits (or rolls back) before its connection closes.
                    self._done(writes.wait())
                finally:
                    writes.close()

    def _done(self, batch: BatchResult | None) -> None:
        """Count a committed batch that claimed rows (None: no batch)."""
        if batch is None:
            return
        self._active_at = time.monotonic()
        self.stats.add(batch)
        if self.on_batch:
            self.on_batch(batch)

    def _wait(self, listener: psycopg.Connection) -> None:
        """Sleep until a notification, the poll interval (shorter right after work), or stop()."""
        now = time.monotonic()
        lingering = now - self._active_at < LINGER
        deadline = now + (LINGER_POLL if lingering else self.settings.poll_interval)
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # Short slices so that stop() is honoured promptly.
            for _ in listener.notifies(timeout=min(left, 0.25), stop_after=1):
                self._active_at = time.monotonic()
                return
