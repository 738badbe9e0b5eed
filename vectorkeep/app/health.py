"""Whether a database can serve vectorkeep's workers now: `vectorkeep health`, for orchestrators' probes.

The checks, in order: the database answers; its schema is at the revision this
vectorkeep expects and serves this release's worker contract; no queue row is
dead (unless allowed); the oldest row ready to claim has not waited longer
than a threshold (when one is given); and rows ready to claim have a worker
to claim them. Each failing check says what to do. Run it as a role that may
read vk.queue (a worker's or an operator's).

"No worker" is what the database can see: no session named as a worker's main
loop names its connections ('vectorkeep worker <host>-<pid>', the name the
text-query lane's callers rely on too) is connected to this database. That
alone is no failure (workers may be scaled to zero while nothing is queued),
nor is an old ready row alone (a backfill's rows rightly wait behind the
application's for hours while workers run): the check fails when both hold,
rows ready to claim for longer than max_idle_queue and no worker there to
claim them. A worker that is connected but stuck is what --max-queue-age is for.
"""

from dataclasses import asdict, dataclass
from typing import Any, Literal

import psycopg

from vectorkeep.db import contract, probes

Status = Literal["ok", "warn", "fail", "skipped"]

# How long a row may be ready with no worker connected before the probe fails: a worker's restart,
# or a rolling upgrade, leaves the queue unserved for seconds, not minutes.
MAX_IDLE_QUEUE_SECONDS = 300.0


@dataclass(frozen=True)
class Check:
    """One check: ok; warn (worth knowing, not a failure); fail (with what to do); skipped."""

    check: str
    status: Status
    detail: str


@dataclass(frozen=True)
class Health:
    checks: list[Check]

    @property
    def healthy(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "checks": [asdict(c) for c in self.checks]}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check(
    url: str,
    *,
    max_queue_age: float | None = None,
    allow_dead: bool = False,
    max_idle_queue: float | None = MAX_IDLE_QUEUE_SECONDS,
    timeout: float = probes.PROBE_TIMEOUT_SECONDS,
) -> Health:
    """Every check's outcome; healthy when none failed. max_idle_queue None: whether a worker is
    there is reported, never a failure."""
    try:
        conn = probes.probe_connection(url, application_name="vectorkeep health", timeout=timeout)
    except psycopg.Error as exc:
        reason = f"cannot connect: {_first_line(exc)}"
        return Health(
            [
                Check(
                    "database",
                    "fail",
                    f"{reason}; check the URL (--database-url or $VECTORKEEP_DATABASE_URL), "
                    "that the server runs, and that it accepts this role",
                ),
                *(
                    Check(name, "skipped", "the database did not answer")
                    for name in ("schema", "contract", "dead", "queue", "workers")
                ),
            ]
        )
    with conn:
        checks = [Check("database", "ok", f"answered (host {conn.info.host}, database {conn.info.dbname})")]
        schema, installed = _schema(conn)
        checks += [schema, _contract(conn)]
        if not installed:
            checks += [
                Check(name, "skipped", "vectorkeep is not installed here") for name in ("dead", "queue", "workers")
            ]
            return Health(checks)
        try:
            queue = probes.queue_state(conn)
        except psycopg.Error as exc:
            why = (
                f"cannot read the queue ({_first_line(exc)}): run the check as a role that may "
                "(a member of vk_worker or vk_admin)"
            )
            checks += [Check("dead", "fail", why), Check("queue", "fail", why)]
            checks.append(Check("workers", "skipped", "the queue could not be read"))
            return Health(checks)
        checks += [_dead(queue, allow_dead), _queue_age(queue, max_queue_age)]
        checks.append(_workers(queue, probes.queue_workers(conn), max_idle_queue))
    return Health(checks)


def _schema(conn: psycopg.Connection) -> tuple[Check, bool]:
    """The database's alembic revision against the one this vectorkeep installs; and whether
    vectorkeep is installed there at all."""
    from vectorkeep.db import migrate  # alembic: imported when a check runs, not with the command line

    head = migrate.head_revision()
    try:
        revision = probes.alembic_revision(conn)
    except psycopg.errors.InsufficientPrivilege:
        unchecked = Check(
            "schema",
            "warn",
            f"this role may not read alembic_version, so the revision is unchecked (this vectorkeep expects "
            f"{head}); the worker contract below is; run the check as the role that migrates to check it too",
        )
        return unchecked, True
    if revision is None:
        return Check("schema", "fail", "vectorkeep is not installed in this database: run `vectorkeep migrate`"), False
    if revision == head:
        return Check("schema", "ok", f"at revision {revision}, the one this vectorkeep expects"), True
    if revision in migrate.revisions():
        behind = Check(
            "schema",
            "fail",
            f"at revision {revision}; this vectorkeep expects {head}: upgrade the schema (`vectorkeep migrate`, "
            "or `alembic upgrade head`)",
        )
        return behind, True
    ahead = Check(
        "schema",
        "warn",
        f"at revision {revision}, newer than this vectorkeep knows (it expects {head}): a newer release migrated "
        "it; workers of this release run while the contract below is served; upgrade vectorkeep on this machine",
    )
    return ahead, True


def _contract(conn: psycopg.Connection) -> Check:
    try:
        contract.check(conn)
    except contract.SchemaMismatch as exc:
        return Check("contract", "fail", str(exc))
    except psycopg.Error as exc:
        return Check("contract", "fail", f"cannot read the worker contract: {_first_line(exc)}")
    return Check("contract", "ok", f"serves worker contract {contract.WORKER_CONTRACT}, the one this worker speaks")


def _pairs(states: list[probes.QueueState], value: str) -> str:
    return ", ".join(f"{s.collection}/{s.model}: {getattr(s, value)}" for s in states)


def _dead(queue: list[probes.QueueState], allow_dead: bool) -> Check:
    dead = [s for s in queue if s.dead]
    if not dead:
        return Check("dead", "ok", "no dead queue row")
    detail = (
        f"{sum(s.dead for s in dead)} dead queue rows ({_pairs(dead, 'dead')}): read their errors in "
        "vk.queue.last_error or `vectorkeep status`, fix the cause, then `SELECT vk.retry_dead()`"
    )
    return Check(
        "dead", "warn" if allow_dead else "fail", detail + (" (allowed by --allow-dead)" if allow_dead else "")
    )


def _queue_age(queue: list[probes.QueueState], max_queue_age: float | None) -> Check:
    ready = [s for s in queue if s.oldest_ready_seconds is not None]
    queued = sum(s.queued for s in queue)
    if not ready:
        waiting = f"{queued} queued, none ready to claim yet (waiting for a retry)" if queued else "the queue is empty"
        return Check("queue", "ok", waiting)
    oldest = max(ready, key=lambda s: s.oldest_ready_seconds or 0.0)
    age = oldest.oldest_ready_seconds or 0.0
    where = f"{oldest.collection}/{oldest.model}"
    if max_queue_age is None:
        return Check("queue", "ok", f"{queued} queued; the oldest ready row ({where}) has waited {age:.0f}s")
    if age <= max_queue_age:
        return Check(
            "queue",
            "ok",
            f"{queued} queued; the oldest ready row ({where}) has waited {age:.0f}s (at most {max_queue_age:g}s)",
        )
    return Check(
        "queue",
        "fail",
        f"the oldest ready row ({where}) has waited {age:.0f}s, more than {max_queue_age:g}s ({queued} queued): "
        "check that workers run (`vectorkeep worker`) and reach this database, or add workers",
    )


def _workers(queue: list[probes.QueueState], workers: int, max_idle_queue: float | None) -> Check:
    """Rows ready to claim, and whether a worker is connected to claim them."""
    ready = [s for s in queue if s.oldest_ready_seconds is not None]
    if workers:
        return Check("workers", "ok", f"{workers} worker{'s' if workers > 1 else ''} serving the queue")
    if not ready:
        return Check("workers", "ok", "no worker connected, and no row is ready to claim")
    oldest = max(ready, key=lambda s: s.oldest_ready_seconds or 0.0)
    age = oldest.oldest_ready_seconds or 0.0
    waiting = (
        f"no worker connected; {sum(s.queued for s in queue)} rows queued, the oldest ready row "
        f"({oldest.collection}/{oldest.model}) waiting {age:.0f}s"
    )
    if max_idle_queue is None or age <= max_idle_queue:
        limit = "" if max_idle_queue is None else f" (a failure after {max_idle_queue:g}s)"
        return Check("workers", "warn", waiting + limit)
    return Check(
        "workers",
        "fail",
        f"{waiting}, more than {max_idle_queue:g}s: start a worker (`vectorkeep worker`, as a member of "
        "vk_worker) against this database, or check why the workers cannot connect",
    )
