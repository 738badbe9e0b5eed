"""What health checks and metrics read from the database: the queue per collection and model
version, the workers serving the queue, running jobs' progress, the schema's alembic revision.

A probe connection waits at most a few seconds for the server and for each statement, so
that an orchestrator's probe or a Prometheus scrape answers "down" rather than hang.
"""

import math
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row

from vectorkeep.db.connect import connect
from vectorkeep.sql import query

PROBE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class QueueState:
    """The queue of one collection and model version (`name@version`)."""

    collection: str
    model: str
    queued: int  # not dead: waiting, ready or being retried
    dead: int
    oldest_seconds: float | None  # age of the oldest queued row (None: none queued)
    oldest_ready_seconds: float | None  # age of the oldest row a worker may claim now


@dataclass(frozen=True)
class JobProgress:
    """A running job and the progress it last saved (None where it has not said)."""

    id: int
    kind: str
    phase: str | None
    done: float | None
    total: float | None


def probe_connection(url: str, *, application_name: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> psycopg.Connection:
    """An autocommit connection whose connect and statements give up after about `timeout` seconds."""
    conn = connect(url, autocommit=True, application_name=application_name, connect_timeout=max(2, math.ceil(timeout)))
    try:
        conn.execute(query("set_statement_timeout"), {"ms": str(int(timeout * 1000))})
    except BaseException:
        conn.close()
        raise
    return conn


def queue_state(conn: psycopg.Connection) -> list[QueueState]:
    """Queued rows, dead rows and the oldest rows' ages of every collection and model version."""
    with conn.cursor(row_factory=class_row(QueueState)) as cur:
        return cur.execute(query("queue_state")).fetchall()


def queue_workers(conn: psycopg.Connection) -> int:
    """How many workers' main loops (`vectorkeep worker`, not --jobs-only) are connected to this database now."""
    row = conn.execute(query("queue_workers")).fetchone()
    return int(row[0]) if row else 0


def running_jobs(conn: psycopg.Connection) -> list[JobProgress]:
    with conn.cursor(row_factory=class_row(JobProgress)) as cur:
        return cur.execute(query("running_jobs")).fetchall()


def alembic_revision(conn: psycopg.Connection) -> str | None:
    """The database's alembic revision; None when vectorkeep was never migrated into it."""
    row = conn.execute(query("has_alembic_version")).fetchone()
    if not row or not row[0]:
        return None
    got = conn.execute(query("alembic_revision")).fetchone()
    return str(got[0]) if got else None
