"""Write one batch while the next is encoded: the worker's encoder never waits on the database.

A worker that claims, encodes, writes and commits on one connection leaves
its encoder idle while the server writes the vectors (HNSW inserts, the
commit's WAL flush), and the database idle while it encodes. So the worker alternates
between two connections: batch N's writes and commit run on its connection
in a background thread (psycopg releases the GIL while it waits on the
socket) while batch N+1 is claimed on the other connection (SKIP LOCKED
passes over N's rows, locked until N commits) and encoded on the worker's
thread. N+1's writes are sent only once N has committed: one write in
flight, batches commit in the order they were claimed, and at most two
batches' rows are locked at a time.

Nothing else changes: each batch is still one transaction from its claim to
its commit (at-least-once, the upsert makes it exactly once), and only the
worker's thread calls an encoder. The write thread touches nothing but the
connection of the batch it writes, which the worker's thread does not use
again until that write is done.
"""

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg

from vectorkeep.workers.embed import Batch, BatchResult


class WriteBehind:
    """Commits batches in a background thread, one at a time."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vectorkeep-write")
        self._pending: Future[BatchResult] | None = None

    def submit(self, conn: psycopg.Connection, batch: Batch) -> None:
        """Start writing and committing a batch on the connection that claimed it; the last one must be done."""
        if self._pending is not None:
            raise RuntimeError("a batch is still being written: wait() for it first")
        # In this thread's context: what it binds (the worker's metrics) holds in the write too.
        self._pending = self._thread.submit(contextvars.copy_context().run, batch.commit, conn)

    def wait(self) -> BatchResult | None:
        """The batch in flight, once committed (None when there is none); raises what its commit raised
        (it rolled back, and its rows are queued again)."""
        pending, self._pending = self._pending, None
        return None if pending is None else pending.result()

    def close(self) -> None:
        """Stop the thread, once the batch in flight (if any) is written: call wait() first for its result."""
        self._thread.shutdown(wait=True)
