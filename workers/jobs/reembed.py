"""reembed: fill vk.embeddings for a model version over a whole collection.

The job walks the source table by key (keyset pages) and queues each page's
rows whose vector is missing or stale; the workers embed them like any queued
row. Memory is one page; progress (the last key queued) is saved after each
page commits, so a job taken over after a crash resumes where it stopped;
rows inserted or changed meanwhile are queued by the triggers, so none is
missed. When the queue for the version is empty the job builds the version's
indexes (HNSW and keyword) if they were deferred (a version new to the
collection is written without them: one bulk build is many times faster than
an index insert per row), and activates the version if asked to (params.activate: the gates, e.g.
{"recall@10": 0.5}). An operator follows its phases (ctx.report): queueing
(rows read out of the collection's), embedding (rows embedded out of those
queued) and, when the indexes were deferred, indexing (0 or 1: the indexes built).

The index is built with CREATE INDEX CONCURRENTLY where the job's role owns
vk.embeddings (writers never wait), else by vk.build_index_v1 (a plain
CREATE INDEX: writes to vk.embeddings wait for it); either way with
at least params.maintenance_work_mem (default 1GB) and params.parallel_workers
(default 2) for the build, pgvector's advice for bulk loads; a larger
setting of the role or the server stays (an HNSW graph of 1,000,000 vectors of
384 dimensions outgrows 1GB, and its build slows several times over).
"""

import logging
import time
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from vectorkeep.db import registry
from vectorkeep.sql import query
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.jobs.runner import JobContext, JobOutcome

log = logging.getLogger(__name__)

# Rows a page queues; the job feeds a page whenever fewer than two are waiting,
# checking every FEED_POLL seconds, so that workers never wait for the next page.
PAGE = 2000
FEED_POLL = 0.05
# An HNSW build is fastest when the graph fits in maintenance_work_mem
# (200,000 vectors of 384 dimensions: about 400 MB).
MAINTENANCE_WORK_MEM = "1GB"
PARALLEL_WORKERS = 2


def _queue(conn: psycopg.Connection, key: dict[str, Any]) -> tuple[int, int, str | None]:
    """Queue rows of (collection, model) left, the dead ones among them, and one dead row's error."""
    row = conn.execute(query("queue_counts"), key).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), row[2]


def run_reembed(ctx: JobContext) -> JobOutcome:
    conn, job = ctx.conn, ctx.job
    key = {"collection_id": job["collection_id"], "model_id": job["model_id"]}
    params = job["params"] or {}
    page = int(params.get("page_size", PAGE))
    model = registry.by_id(conn, job["model_id"])
    # Prove the encoder loads (artifact sha256, fingerprint) before queueing
    # any row for it: a tampered model fails the job, with the reason.
    with conn.transaction():
        EncoderCache().get(conn, model)
    snapshot = conn.execute(query("record_snapshot"), {"id": ctx.id, **key}).fetchone()
    rows = int(((snapshot[0] if snapshot else None) or {}).get("rows") or 0)

    state = ctx.progress_state
    after, scanned, queued = state.get("last_key"), int(state.get("scanned", 0)), int(state.get("queued", 0))
    if state.get("phase") not in ("embedding", "indexing"):
        # Phase queueing: rows read of the collection's (done out of the rows it held at the start).
        while True:
            # Keep the queue short: feed a page only when the workers have caught up.
            while _queue(conn, key)[0] > 2 * page:
                ctx.report("queueing", scanned, max(rows, scanned))
                ctx.sleep(FEED_POLL)
            ctx.report("queueing", scanned, max(rows, scanned))
            row = conn.execute(query("enqueue_page"), {**key, "after": after, "page": page}).fetchone()
            assert row is not None
            last_key, page_scanned, page_queued = row
            if last_key is None:
                break
            after, scanned, queued = last_key, scanned + page_scanned, queued + page_queued
            ctx.progress(last_key=after, scanned=scanned, queued=queued)  # committed: a resumed job goes on from here
            ctx.report("queueing", scanned, max(rows, scanned))
            ctx.save_progress()
        ctx.report("queueing", scanned, scanned)
        ctx.progress(phase="embedding", last_key=after, scanned=scanned, queued=queued)
        ctx.save_progress()
        log.info("reembed %s: %d rows scanned, %d queued for %s", ctx.id, scanned, queued, model.label)

    # Phase embedding: rows embedded by the workers, out of those queued (plus any the triggers queue meanwhile).
    done, total = 0, queued
    while True:
        left, dead, error = _queue(conn, key)
        total = max(total, done + left)
        done = total - left
        ctx.progress(remaining=left)
        ctx.report("embedding", done, total)
        if left == 0:
            break
        if dead == left:
            raise RuntimeError(f"{dead} rows could not be embedded with {model.label}: {error}")
        ctx.sleep(0.2)
    ctx.save_progress()

    metrics: dict[str, Any] = {"scanned": scanned, "queued": queued}
    metrics.update(_build_index(ctx, key, params))
    gates = params.get("activate")
    if gates is not None:
        name_row = conn.execute(query("collection_name"), {"id": job["collection_id"]}).fetchone()
        assert name_row is not None
        try:
            conn.execute(query("activate"), {"collection": name_row[0], "model": model.label, "gates": Jsonb(gates)})
            metrics["activated"] = True
            log.info("activated %s for %s", model.label, name_row[0])
        except psycopg.Error as exc:
            metrics["activated"] = False
            metrics["activation_refused"] = exc.diag.message_primary or str(exc)
            log.warning("%s not activated: %s", model.label, metrics["activation_refused"])
    return JobOutcome(metrics=metrics, model_id=model.id)


def _build_index(ctx: JobContext, key: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Build the version's indexes (HNSW, keyword) if its backfill deferred them; what was done, for metrics."""
    conn = ctx.conn
    while True:
        row = conn.execute(query("index_plan"), key).fetchone()
        assert row is not None
        state, statements, concurrently = row
        if state != "building":  # another session's build
            break
        ctx.report("indexing", 0, 1, unit="index")
        ctx.sleep(1.0)
    if not statements:
        return {"index": state}
    ctx.progress(phase="indexing")
    ctx.save_progress()  # a job taken over from here builds the indexes, and queues nothing again
    ctx.report("indexing", 0, 1, unit="index")
    settings = {
        "maintenance_work_mem": str(params.get("maintenance_work_mem", MAINTENANCE_WORK_MEM)),
        "parallel_workers": str(int(params.get("parallel_workers", PARALLEL_WORKERS))),
    }
    conn.execute(query("index_build_settings"), settings)
    started = time.monotonic()
    if concurrently:
        for statement in statements:  # from vk.index_plan_v1, built in SQL
            conn.execute(statement.encode())
        got = conn.execute(query("index_plan"), key).fetchone()
    else:
        got = conn.execute(query("build_index"), key).fetchone()
    state = got[0] if got else None
    seconds = round(time.monotonic() - started, 3)
    how = "concurrently" if concurrently else "with writes held"
    log.info("reembed %s: %d index statements in %.1fs (%s): %s", ctx.id, len(statements), seconds, how, state)
    ctx.report("indexing", 1, 1, unit="index")
    ctx.save_progress()
    return {"index": state, "index_seconds": seconds, "index_concurrently": bool(concurrently)}
