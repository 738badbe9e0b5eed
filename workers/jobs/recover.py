"""recover: text for every row of an adopted vector-only table, into vk.recovered.

Keyset pages of the legacy table, progress (the last key) saved after each
page, so a job taken over resumes. Method nearest runs in SQL: each vector's
nearest stored text among the collections embedded with the reference
version, with its similarity and source row. Method best, or an inverter's
method, goes through the recovery entry point (workers.recovery):
the inverter's text and the nearest stored text, each stored with the cosine
of its text, re-embedded, to the target; vk.recovered_text picks the better.
Method best without a ready inverter for the encoder is method nearest.
"""

import logging

from psycopg.types.json import Jsonb

from vectorkeep.db import registry
from vectorkeep.sql import query
from vectorkeep.workers.jobs.runner import JobContext, JobOutcome
from vectorkeep.workers.kinds import is_encoder
from vectorkeep.workers.recovery import NEAREST, Recovery, method_of, ranked_inverters, recovery_for

log = logging.getLogger(__name__)

PAGE = 200


def run_recover(ctx: JobContext) -> JobOutcome:
    conn, job = ctx.conn, ctx.job
    params = job["params"]
    method = params["method"]
    row = conn.execute(query("adopted_id"), {"name": params["adopted"]}).fetchone()
    if row is None:
        raise ValueError(f"adopted table {params['adopted']!r} is gone")
    adopted_id = int(row[0])
    recovery = _recovery(ctx) if method != NEAREST else None
    if recovery is None:
        _recover_nearest(ctx, adopted_id)
        methods = [NEAREST]
    else:
        _recover_each(ctx, adopted_id, recovery)
        methods = [NEAREST, method_of(recovery.inverter.version.kind) if recovery.inverter else NEAREST]
    metrics: dict[str, object] = {"method": method}
    for tried in dict.fromkeys(methods):
        summary = conn.execute(query("recovered_summary"), {"adopted_id": adopted_id, "method": tried}).fetchone()
        assert summary is not None
        count, mean_similarity, missing = summary
        log.info("recovered %s rows of %s by %s (mean similarity %s)", count, params["adopted"], tried, mean_similarity)
        metrics[tried] = {
            "rows": count,
            "without_text": missing,
            "mean_similarity": None if mean_similarity is None else float(mean_similarity),
        }
    return JobOutcome(metrics=metrics, model_id=job["model_id"])


def _recovery(ctx: JobContext) -> Recovery | None:
    """The entry point for method best or an inverter's method; None when best has no inverter to use."""
    conn, params = ctx.conn, ctx.job["params"]
    reference = registry.by_id(conn, params["reference_model_id"])
    with conn.transaction():  # the encoder's first load records its fingerprint
        if params["method"] == "best":
            # Stored texts of adopted vectors (no encoder here), or no inverter yet: nearest it is.
            if not is_encoder(reference.kind) or not ranked_inverters(conn, reference):
                return None
            return recovery_for(conn, reference, options=params.get("params", {}))
        encoder = registry.by_id(conn, reference.params["encoder_model_id"])
        return recovery_for(conn, encoder, inverter=reference, options=params.get("params", {}))


def _recover_nearest(ctx: JobContext, adopted_id: int) -> None:
    conn, params = ctx.conn, ctx.job["params"]
    state = ctx.progress_state
    after, done = state.get("last_key"), int(state.get("recovered", 0))
    page = int(params.get("params", {}).get("page_size", PAGE))
    while True:
        ctx.report("recovering", done)  # the adopted table's size is not known: no total
        last_key, recovered = conn.execute(
            query("recover_nearest_page"),
            {
                "adopted_id": adopted_id,
                "after": after,
                "page": page,
                "reference_model_id": params["reference_model_id"],
                "job_id": ctx.id,
            },
        ).fetchone() or (None, 0)
        if last_key is None:
            break
        after, done = last_key, done + recovered
        ctx.progress(last_key=after, recovered=done)
        ctx.report("recovering", done)
        ctx.save_progress()


def _recover_each(ctx: JobContext, adopted_id: int, recovery: Recovery) -> None:
    conn, job = ctx.conn, ctx.job
    options = job["params"].get("params", {})
    state = ctx.progress_state
    after, done = state.get("last_key"), int(state.get("recovered", 0))
    page = int(options.get("page_size", 50))
    while True:
        ctx.report("recovering", done)
        rows = conn.execute(query("adopted_page"), {"adopted_id": adopted_id, "after": after, "page": page}).fetchall()
        if not rows:
            break
        # Row by row (each up to the time box): each one committed with the position after it, so a
        # cancelled, stopped or taken-over job loses at most the row in hand.
        for pk, embedding in rows:
            result = recovery.recover(registry.as_array(embedding))
            for attempt in result.tried:
                conn.execute(
                    query("put_recovered"),
                    {
                        "adopted_id": adopted_id,
                        "pk": pk,
                        "method": attempt.method,
                        "body": attempt.text,
                        "similarity": attempt.cosine,
                        "model_id": job["model_id"],
                        "reference_model_id": attempt.model_id,
                        "source_collection": attempt.source_collection,
                        "source_pk": attempt.source_pk,
                        "job_id": ctx.id,
                        "details": Jsonb(
                            {
                                "best": attempt is result.best,
                                "seconds": attempt.seconds,
                                **(
                                    {"steps": attempt.steps, "timed_out": attempt.timed_out}
                                    if attempt.steps is not None
                                    else {}
                                ),
                            }
                        ),
                    },
                )
            after, done = pk, done + 1
            ctx.progress(last_key=after, recovered=done)
            ctx.report("recovering", done)
        ctx.save_progress()
