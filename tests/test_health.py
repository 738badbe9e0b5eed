"""`vectorkeep health` against real databases: healthy, unreachable, behind or beside this release's
schema, with dead rows, with a row waiting too long, with rows ready and no worker; and the console
script's exit code."""

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

from helpers import background_worker, queue_size, wait_for
from vectorkeep.app import health
from vectorkeep.db import migrate
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.worker import WorkerSettings

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nothing"
CONSOLE_SCRIPT = str(Path(sys.executable).parent / "vectorkeep")


def vectorkeep(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as an orchestrator's probe runs it."""
    return subprocess.run(
        [CONSOLE_SCRIPT, "--database-url", url, "health", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def statuses(result: health.Health) -> dict[str, str]:
    return {c.check: c.status for c in result.checks}


def detail(result: health.Health, name: str) -> str:
    return next(c.detail for c in result.checks if c.check == name)


def test_a_healthy_database_exits_0(db_url: str) -> None:
    done = vectorkeep(db_url, "--json", "--max-queue-age", "60")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["healthy"] is True
    assert {c["check"]: c["status"] for c in report["checks"]} == {
        "database": "ok",
        "schema": "ok",
        "contract": "ok",
        "dead": "ok",
        "queue": "ok",
        "workers": "ok",
    }


def test_an_unreachable_database_exits_1_and_says_what_to_check() -> None:
    done = vectorkeep(UNREACHABLE, "--timeout", "2")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["fail", "database"] and "check the URL" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["skipped"] * 5


def test_a_schema_behind_this_release_fails_and_one_ahead_warns(conn: psycopg.Connection, db_url: str) -> None:
    head, previous = migrate.revisions()[-1], migrate.revisions()[-2]
    conn.execute("UPDATE alembic_version SET version_num = %s", (previous,))
    behind = health.check(db_url)
    assert not behind.healthy and statuses(behind)["schema"] == "fail"
    assert f"at revision {previous}; this vectorkeep expects {head}" in detail(behind, "schema")
    assert "vectorkeep migrate" in detail(behind, "schema")

    # A newer release migrated it and still serves this worker contract: workers of this release run.
    conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    ahead = health.check(db_url)
    assert ahead.healthy and statuses(ahead)["schema"] == "warn"
    assert "upgrade vectorkeep on this machine" in detail(ahead, "schema")


def test_a_schema_that_no_longer_serves_this_worker_contract_fails(conn: psycopg.Connection, db_url: str) -> None:
    conn.execute(
        "CREATE OR REPLACE FUNCTION vk.worker_contract() RETURNS integer[] LANGUAGE sql IMMUTABLE RETURN ARRAY[2]"
    )
    result = health.check(db_url)
    assert not result.healthy and statuses(result)["contract"] == "fail"
    assert "no longer serves" in detail(result, "contract")


def test_a_database_without_vectorkeep_fails(empty_db_url: str) -> None:
    result = health.check(empty_db_url)
    assert statuses(result) == {
        "database": "ok",
        "schema": "fail",
        "contract": "fail",
        "dead": "skipped",
        "queue": "skipped",
        "workers": "skipped",
    }
    assert "vectorkeep migrate" in detail(result, "schema")


def test_dead_rows_fail_unless_allowed(conn: psycopg.Connection, db_url: str) -> None:
    conn.execute("INSERT INTO vk.documents (body) VALUES ('a'), ('b')")
    conn.execute("UPDATE vk.queue SET dead = true, attempts = 5, last_error = 'boom'")
    result = health.check(db_url)
    assert not result.healthy and statuses(result)["dead"] == "fail"
    assert "2 dead queue rows (documents/minilm@1: 2)" in detail(result, "dead")
    assert "vk.retry_dead()" in detail(result, "dead")

    allowed = health.check(db_url, allow_dead=True)
    assert allowed.healthy and statuses(allowed)["dead"] == "warn"


def test_a_row_waiting_longer_than_allowed_fails(conn: psycopg.Connection, db_url: str) -> None:
    conn.execute("INSERT INTO vk.documents (body) VALUES ('waiting'), ('fresh')")
    conn.execute(
        "UPDATE vk.queue SET enqueued_at = now() - interval '1 hour' WHERE pk = (SELECT min(pk) FROM vk.queue)"
    )
    # (No worker here either: that check is the next test's.)
    assert health.check(db_url, max_idle_queue=None).healthy  # no threshold: the age is reported only
    assert health.check(db_url, max_queue_age=7200, max_idle_queue=None).healthy

    done = vectorkeep(db_url, "--max-queue-age", "60")
    assert done.returncode == 1, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.split()[1] == "queue")
    assert line.startswith("fail") and re.search(r"\(documents/minilm@1\) has waited 36\d\ds, more than 60s", line)
    assert "vectorkeep worker" in line

    # A row waiting for its retry (not ready) is no worker's fault.
    conn.execute("UPDATE vk.queue SET run_after = now() + interval '1 minute'")
    assert health.check(db_url, max_queue_age=60).healthy


def test_rows_ready_with_no_worker_fail_until_a_worker_drains_them(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    """Finding 2: health was green with no worker running and rows queued for hours."""
    conn.execute("INSERT INTO vk.documents (body) SELECT 'queued ' || g FROM generate_series(1, 3) g")
    fresh = health.check(db_url)  # worth knowing, not a failure yet: a worker may be restarting
    assert fresh.healthy and statuses(fresh)["workers"] == "warn"
    assert "no worker connected" in detail(fresh, "workers") and "a failure after 300s" in detail(fresh, "workers")

    conn.execute(
        "UPDATE vk.queue SET enqueued_at = now() - interval '10 minutes', run_after = now() - interval '10 minutes'"
    )
    done = vectorkeep(db_url)
    assert done.returncode == 1, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.split()[1] == "workers")
    assert line.startswith("fail") and "vectorkeep worker" in line
    assert re.search(
        r"no worker connected; 3 rows queued, the oldest ready row \(documents/minilm@1\) waiting 60\ds, "
        r"more than 300s",
        line,
    )
    assert vectorkeep(db_url, "--max-idle-queue", "3600").returncode == 0

    # A worker's main loop is known by its sessions' name, queue or no queue.
    with psycopg.connect(db_url, application_name="vectorkeep worker elsewhere-1"):
        connected = health.check(db_url)
    assert connected.healthy and detail(connected, "workers") == "1 worker serving the queue"
    with background_worker(db_url, encoders, WorkerSettings(poll_interval=0.2)):
        wait_for(lambda: queue_size(conn) == 0, 30, "the worker to drain the queue")
        serving = health.check(db_url)
    assert serving.healthy and detail(serving, "workers") == "1 worker serving the queue"
    after = health.check(db_url)  # the worker gone, nothing to claim: healthy
    assert after.healthy and statuses(after)["workers"] == "ok"


def test_roles(login: Callable[[str], str]) -> None:
    """A worker's role checks all but the revision (it may not read alembic_version); an application's
    may not read the queue, and is told which role to use."""
    worker = health.check(login("vk_worker"), max_queue_age=60)
    assert worker.healthy, worker.checks
    assert statuses(worker)["schema"] == "warn" and "may not read alembic_version" in detail(worker, "schema")

    app = health.check(login("vk_app"))
    assert not app.healthy and statuses(app)["dead"] == "fail"
    assert "vk_worker or vk_admin" in detail(app, "dead")
    assert statuses(app)["workers"] == "skipped"
