"""The job runner: claim a job with a lease, run it while a heartbeat keeps the
lease, record how it ended.

A job whose worker dies keeps its lease until it expires; then the next claim
takes it over (vk.claim_job_v1) and the job resumes from its saved progress
where its kind allows (re-embedding does; training starts again).
"""

import collections
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from vectorkeep.db import contract
from vectorkeep.db.connect import connect
from vectorkeep.sql import query

log = logging.getLogger(__name__)


class JobLost(Exception):
    """The job's lease went to another worker (or the job was cancelled): stop without recording anything."""


class JobStopped(Exception):
    """This worker is stopping: hand the job back so another resumes it."""


@dataclass
class JobOutcome:
    metrics: dict[str, Any] = field(default_factory=dict)
    model_id: int | None = None


class _LogTail(logging.Handler):
    """The last lines a job logged (from its own thread), kept in vk.jobs.log_tail."""

    def __init__(self, thread: int, lines: int = 60) -> None:
        super().__init__(logging.INFO)
        self.thread = thread
        self.lines: collections.deque[str] = collections.deque(maxlen=lines)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(self.lines)


class JobContext:
    """What a job handler gets: its job row, a connection, the url, progress and liveness."""

    def __init__(self, runner: "JobRunner", job: dict[str, Any], conn: psycopg.Connection) -> None:
        self.runner = runner
        self.job = job
        self.conn = conn
        self.url = runner.url
        self._progress: dict[str, Any] = dict(job.get("progress") or {})
        self.lost = threading.Event()

    @property
    def id(self) -> int:
        return int(self.job["id"])

    @property
    def progress_state(self) -> dict[str, Any]:
        return dict(self._progress)

    def progress(self, **values: Any) -> None:
        """Update the progress the next heartbeat saves (resumable jobs keep their position here)."""
        self._progress.update(values)

    def save_progress(self) -> None:
        """Save progress now (e.g. right after the work it describes was committed)."""
        self._heartbeat(self.conn)

    def _heartbeat(self, conn: psycopg.Connection) -> None:
        row = conn.execute(
            query("heartbeat_job"),
            {
                "id": self.id,
                "worker": self.runner.name,
                "lease": self.runner.lease_seconds,
                "progress": Jsonb(self._progress),
            },
        ).fetchone()
        if not (row and row[0]):
            self.lost.set()

    def check(self) -> None:
        """Raise if the job is no longer ours, or the worker is stopping."""
        if self.lost.is_set():
            raise JobLost(f"job {self.id} is no longer held by {self.runner.name}")
        if self.runner.stopping:
            raise JobStopped(f"worker {self.runner.name} is stopping")

    def sleep(self, seconds: float) -> None:
        self.runner.stop_event.wait(seconds)
        self.check()


Handler = Callable[[JobContext], JobOutcome]


class JobRunner:
    def __init__(
        self,
        url: str,
        handlers: dict[str, Handler] | None = None,
        *,
        lease_seconds: float = 30.0,
        poll_interval: float = 2.0,
        stop_event: threading.Event | None = None,
        name: str | None = None,
    ) -> None:
        from vectorkeep.workers.jobs import HANDLERS

        self.url = url
        self.handlers = handlers or HANDLERS
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.stop_event = stop_event or threading.Event()
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-jobs"
        self.finished: list[int] = []

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self, *, until_idle: bool = False) -> list[int]:
        """Run jobs until stop() (or, with until_idle, until none is ready); the ids of jobs run."""
        delay = 0.5
        while not self.stopping:
            try:
                with connect(self.url, autocommit=True, application_name=f"vectorkeep jobs {self.name}") as conn:
                    contract.check(conn)
                    conn.execute(query("listen_jobs"))
                    delay = 0.5
                    while not self.stopping:
                        conn.execute(query("run_due_schedules"))
                        job = self._claim(conn)
                        if job is not None:
                            self._execute(job)
                            continue
                        if until_idle:
                            return self.finished
                        for _ in conn.notifies(timeout=self.poll_interval, stop_after=1):
                            pass
            except psycopg.OperationalError as exc:
                log.warning("job runner lost its connection (%s); reconnecting in %.1fs", exc, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 10.0)
        return self.finished

    def _claim(self, conn: psycopg.Connection) -> dict[str, Any] | None:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                query("claim_job"),
                {"worker": self.name, "lease": self.lease_seconds, "kinds": list(self.handlers)},
            ).fetchone()

    def _execute(self, job: dict[str, Any]) -> None:
        handler = self.handlers[job["kind"]]
        tail = _LogTail(threading.get_ident())
        logging.getLogger("vectorkeep").addHandler(tail)
        log.info("job %s (%s) claimed by %s, attempt %s", job["id"], job["kind"], self.name, job["attempts"])
        started = time.monotonic()
        with connect(self.url, autocommit=True, application_name=f"vectorkeep job {job['id']}") as conn:
            ctx = JobContext(self, job, conn)
            beating = threading.Event()
            beat = threading.Thread(target=self._beat, args=(ctx, beating), daemon=True)
            beat.start()
            try:
                outcome = handler(ctx)
                ctx.check()
                metrics = {**outcome.metrics, "seconds": round(time.monotonic() - started, 3)}
                log.info("job %s succeeded", job["id"])
                self._end(
                    conn,
                    "finish_job",
                    {"id": job["id"], "metrics": Jsonb(metrics), "model_id": outcome.model_id, "log": tail.text()},
                )
                self.finished.append(int(job["id"]))
            except JobLost as exc:
                log.warning("%s", exc)
            except JobStopped:
                log.info("job %s handed back: the worker is stopping", job["id"])
                conn.execute(
                    query("release_job"), {"id": job["id"], "worker": self.name, "progress": Jsonb(ctx.progress_state)}
                )
            except Exception as exc:
                log.exception("job %s failed", job["id"])
                self._end(
                    conn, "fail_job", {"id": job["id"], "error": f"{type(exc).__name__}: {exc}", "log": tail.text()}
                )
            finally:
                beating.set()
                beat.join(timeout=10)
                logging.getLogger("vectorkeep").removeHandler(tail)

    def _end(self, conn: psycopg.Connection, name: str, params: dict[str, Any]) -> None:
        row = conn.execute(query(name), {**params, "worker": self.name}).fetchone()
        if not (row and row[0]):
            log.warning("job %s was taken over before it ended here; its result is not recorded", params["id"])

    def _beat(self, ctx: JobContext, done: threading.Event) -> None:
        """Extend the lease every third of it, with the latest progress, on a connection of its own."""
        try:
            with connect(self.url, autocommit=True, application_name=f"vectorkeep heartbeat {ctx.id}") as conn:
                while not done.wait(self.lease_seconds / 3):
                    ctx._heartbeat(conn)
                    if ctx.lost.is_set():
                        return
        except psycopg.Error as exc:
            log.warning("heartbeat of job %s stopped: %s", ctx.id, exc)
