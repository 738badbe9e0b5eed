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


# How soon a change of progress reaches vk.jobs.progress, and a cancellation the job.
PROGRESS_SAVE_SECONDS = 2.0

# The keys JobContext.report records.
REPORT_KEYS = ("done", "total", "unit", "rate")


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
    """What a job handler gets: its job row, a connection, the url, progress and liveness.

    Progress is a dict saved in vk.jobs.progress: a job's resume position (e.g. a
    re-embed's last key) and what `report` records for an operator to follow
    (phase, done, total, unit, rate). The heartbeat thread saves it within
    PROGRESS_SAVE_SECONDS of a change; save_progress saves it at once.
    """

    def __init__(self, runner: "JobRunner", job: dict[str, Any], conn: psycopg.Connection) -> None:
        self.runner = runner
        self.job = job
        self.conn = conn
        self.url = runner.url
        self._progress: dict[str, Any] = dict(job.get("progress") or {})
        # The job's thread writes progress while the heartbeat thread reads and saves it.
        self._lock = threading.Lock()
        # Held across a save (copy, then UPDATE): an older copy never overwrites a newer one.
        self._saving = threading.Lock()
        self._changes = 0  # bumped at every change of progress
        self._saved = 0  # the change count the database holds
        self._phase: tuple[str, float, int] | None = None  # the reported phase, when it began, its done then
        self.lost = threading.Event()

    @property
    def id(self) -> int:
        return int(self.job["id"])

    @property
    def progress_state(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._progress)

    def progress(self, **values: Any) -> None:
        """Update the progress the heartbeat saves (resumable jobs keep their position here).

        A new phase given without `done` drops the counts report() recorded for the last one."""
        with self._lock:
            if "phase" in values and "done" not in values and values["phase"] != self._progress.get("phase"):
                for key in REPORT_KEYS:
                    self._progress.pop(key, None)
                self._phase = None
            self._progress.update(values)
            self._changes += 1

    def report(self, phase: str, done: int, total: int | None = None, unit: str = "rows") -> None:
        """Record how far the job is, for `vectorkeep jobs wait` and vk.jobs.progress, and stop here
        if the job was cancelled or taken over (JobLost) or the worker is stopping (JobStopped).

        Call it in every long loop, at least every few seconds: it is cheap (the heartbeat thread
        saves the progress within PROGRESS_SAVE_SECONDS, never this call). `rate` is `unit`s per
        second since this phase began in this run; other keys of the progress (a resume position)
        are kept.
        """
        now = time.monotonic()
        with self._lock:
            if self._phase is None or self._phase[0] != phase:
                self._phase = (phase, now, done)
            _, began, done_then = self._phase
            elapsed = now - began
            rate = round(max(done - done_then, 0) / elapsed, 2) if elapsed > 0 else 0.0
            self._progress.update(phase=phase, done=done, total=total, unit=unit, rate=rate)
            self._changes += 1
        self.check()

    def save_progress(self) -> None:
        """Save progress now (e.g. right after the work it describes was committed)."""
        # Not forever behind a heartbeat that waits on a row lock this job's transaction holds.
        locked = self._saving.acquire(timeout=self.runner.lease_seconds)
        try:
            self._save(self.conn, always=True)
        finally:
            if locked:
                self._saving.release()

    def _heartbeat(self, conn: psycopg.Connection) -> None:
        """Extend the lease, with the progress when it changed since it was last saved (the heartbeat thread)."""
        with self._saving:
            self._save(conn, always=False)

    def _save(self, conn: psycopg.Connection, *, always: bool) -> None:
        with self._lock:
            changes = self._changes
            progress = dict(self._progress) if always or changes != self._saved else None
        row = conn.execute(
            query("heartbeat_job"),
            {
                "id": self.id,
                "worker": self.runner.name,
                "lease": self.runner.lease_seconds,
                "progress": None if progress is None else Jsonb(progress),
            },
        ).fetchone()
        if not (row and row[0]):
            self.lost.set()
        elif progress is not None:
            with self._lock:
                self._saved = max(self._saved, changes)

    def check(self) -> None:
        """Raise if the job is no longer ours, or the worker is stopping."""
        if self.lost.is_set():
            raise JobLost(f"job {self.id} is no longer held by {self.runner.name} (cancelled, or taken over)")
        if self.runner.stopping:
            raise JobStopped(f"worker {self.runner.name} is stopping")

    def sleep(self, seconds: float) -> None:
        """Wait, waking early when the worker stops or the job is lost; then check()."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self.lost.is_set():
            if self.runner.stop_event.wait(min(left, 0.25)):
                break
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
        """Every PROGRESS_SAVE_SECONDS (or a third of the lease, if shorter), on a connection of its own:
        extend the lease, save the progress if it changed, and learn whether the job was cancelled or
        taken over (ctx.lost). A lost connection is opened again (a job taken over meanwhile learns it then)."""
        every = min(self.lease_seconds / 3, PROGRESS_SAVE_SECONDS)
        while not done.is_set() and not ctx.lost.is_set():
            try:
                with connect(self.url, autocommit=True, application_name=f"vectorkeep heartbeat {ctx.id}") as conn:
                    while not done.wait(every):
                        ctx._heartbeat(conn)
                        if ctx.lost.is_set():
                            return
            except psycopg.Error as exc:
                log.warning("heartbeat of job %s: %s; trying again in %.1fs", ctx.id, exc, every)
                done.wait(every)
