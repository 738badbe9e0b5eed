"""Versioned jobs: queue a train or reembed job, list jobs, read one, wait for one to end."""

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from vectorkeep.db.connect import connect
from vectorkeep.sql import query

# A row of vk.jobs as the named query `job` reads it (with its collection and model names).
Job = dict[str, Any]
OnProgress = Callable[[Job], None]

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class TrainRequest:
    """A train job: the next version of `model`, of a kind, from a collection's text."""

    model: str
    kind: str
    collection: str
    params: Mapping[str, Any] = field(default_factory=dict)


def _train_values(request: TrainRequest) -> dict[str, Any]:
    return {
        "model": request.model,
        "kind": request.kind,
        "params": Jsonb(dict(request.params)),
        "collection": request.collection,
    }


def _job(conn: psycopg.Connection, job_id: int) -> Job:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query("job"), {"id": job_id}).fetchone()
    if row is None:
        raise LookupError(f"no job {job_id}")
    return row


def get_job(url: str, job_id: int) -> Job:
    """One job: the whole vk.jobs row (params, status, progress, metrics, snapshot, error, attempts, worker,
    created/started/finished, log_tail), its collection and model names, and queued_seconds and run_seconds
    (so far, for a job not finished)."""
    with connect(url) as conn:
        return _job(conn, job_id)


def log_lines(job: Job, last: int | None = None) -> list[str]:
    """The job's log tail (recorded when it ends) as lines, the `last` ones when given."""
    lines = (job.get("log_tail") or "").splitlines()
    return lines[-last:] if last else lines


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else json.dumps(value, default=str)


def _history(values: list[Any], what: str) -> str:
    """[{"epoch": 1, "train_loss": ...}, ...] or [0.9, 0.5, ...] as 'N epochs, last train_loss 0.12, val_loss 0.2'."""
    last = values[-1]
    if isinstance(last, Mapping):
        shown = ", ".join(f"{k} {_number(v)}" for k, v in last.items() if k != "epoch")
    else:
        shown = _number(last)
    return f"{len(values)} {what}, last {shown}"


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def summarise_metrics(metrics: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """A job's metrics as flat scalars for people: nested objects as dotted keys (nearest.bleu), a per-epoch
    history (a list such as loss_history) as 'N epochs, last ...', other long lists as 'N values, last ...'."""
    flat: dict[str, Any] = {}
    for key, value in (metrics or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(summarise_metrics(value, f"{name}."))
        elif isinstance(value, list) and value and ("history" in key or isinstance(value[-1], Mapping)):
            flat[name] = _history(value, "epochs")
        elif isinstance(value, list) and len(value) > 10:
            flat[name] = _history(value, "values")
        else:
            flat[name] = _scalar(value)
    return flat


def list_jobs(url: str, limit: int = 20) -> list[Job]:
    """The latest jobs, newest first."""
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query("list_jobs"), {"limit": limit}).fetchall()


def follow_up(job: Job) -> int | None:
    """The job a succeeded job queued after itself (a train job's re-embed), if any."""
    queued = (job.get("metrics") or {}).get("reembed_job")
    return int(queued) if job["status"] == "succeeded" and queued else None


def wait_for_job(url: str, job_id: int, *, on_progress: OnProgress | None = None, poll_seconds: float = 0.5) -> Job:
    """Poll a job until it ends; on_progress sees it at every poll."""
    with connect(url, autocommit=True) as conn:
        while True:
            job = _job(conn, job_id)
            if on_progress is not None:
                on_progress(job)
            if job["status"] in FINISHED:
                return job
            time.sleep(poll_seconds)


def wait_for_jobs(
    url: str, job_id: int, *, on_progress: OnProgress | None = None, on_end: OnProgress | None = None
) -> list[Job]:
    """Wait for a job and for each job it queued after it (a train job, then its re-embed); all of them, in order.

    on_progress sees each job at every poll, on_end each job as it ends.
    """
    jobs: list[Job] = []
    queued: int | None = job_id
    while queued is not None:
        jobs.append(wait_for_job(url, queued, on_progress=on_progress))
        if on_end is not None:
            on_end(jobs[-1])
        queued = follow_up(jobs[-1])
    return jobs


def train(url: str, request: TrainRequest) -> int:
    """Queue a train job (vk.train); its id."""
    with connect(url, autocommit=True) as conn:
        row = conn.execute(query("train"), _train_values(request)).fetchone()
    assert row is not None
    return int(row[0])


def schedule_train(url: str, request: TrainRequest, every: str) -> int:
    """Retrain periodically (vk.schedule_train), every PostgreSQL interval; the schedule's id."""
    with connect(url, autocommit=True) as conn:
        row = conn.execute(query("schedule_train"), {**_train_values(request), "every": every}).fetchone()
    assert row is not None
    return int(row[0])


def unschedule(url: str, model: str, collection: str | None = None) -> int:
    """Stop retraining a model on a schedule (vk.unschedule), on one collection or all; how many stopped."""
    with connect(url, autocommit=True) as conn:
        row = conn.execute(query("unschedule"), {"model": model, "collection": collection}).fetchone()
    assert row is not None
    return int(row[0])


def reembed(url: str, collection: str, model: str) -> int:
    """Queue a reembed job (vk.reembed): a version's vectors over a collection; its id."""
    with connect(url, autocommit=True) as conn:
        row = conn.execute(query("reembed"), {"collection": collection, "model": model}).fetchone()
    assert row is not None
    return int(row[0])


def cancel(url: str, job_id: int) -> str:
    """Cancel a queued or running job (vk.cancel_job); its new status."""
    with connect(url, autocommit=True) as conn:
        row = conn.execute(query("cancel_job"), {"id": job_id}).fetchone()
    assert row is not None
    return str(row[1])
