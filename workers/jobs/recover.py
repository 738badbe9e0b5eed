"""recover: text for every row of an adopted vector-only table, into vk.recovered.

Keyset pages of the legacy table, progress (the last key) saved after each
page, so a job taken over resumes. Method nearest runs in SQL: each vector's
nearest stored text among the collections embedded with the reference
version, with its similarity and source row. Method vec2text generates text
with a trained inverter and records the cosine of that text, re-embedded by
the encoder, to the target vector.
"""

import logging

from psycopg.types.json import Jsonb

from vectorkeep.db import artifacts, registry
from vectorkeep.sql import query
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.inversion import model as inverter_model
from vectorkeep.workers.inversion.invert import invert
from vectorkeep.workers.jobs.runner import JobContext, JobOutcome

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
    if method == "vec2text":
        _recover_vec2text(ctx, adopted_id)
    elif method == "nearest":
        _recover_nearest(ctx, adopted_id)
    else:
        raise ValueError(f"unknown recovery method {method!r}")
    summary = conn.execute(query("recovered_summary"), {"adopted_id": adopted_id, "method": method}).fetchone()
    assert summary is not None
    count, mean_similarity, missing = summary
    log.info("recovered %s rows of %s by %s (mean similarity %s)", count, params["adopted"], method, mean_similarity)
    return JobOutcome(
        metrics={
            "method": method,
            "rows": count,
            "without_text": missing,
            "mean_similarity": None if mean_similarity is None else float(mean_similarity),
        },
        model_id=job["model_id"],
    )


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


def _recover_vec2text(ctx: JobContext, adopted_id: int) -> None:
    conn, job = ctx.conn, ctx.job
    params = job["params"]
    options = params.get("params", {})
    steps, beam_width = int(options.get("steps", 1)), int(options.get("beam_width", 4))
    max_seconds = float(options.get("max_seconds", 10.0))
    inverter_version = registry.by_id(conn, params["reference_model_id"])
    encoder_version = registry.by_id(conn, inverter_version.params["encoder_model_id"])
    with conn.transaction():
        encoder = EncoderCache().get(conn, encoder_version)  # fingerprint-checked
        model = inverter_model.from_artifact(
            inverter_version.params["encoder_source"], inverter_version.params, artifacts.load(conn, inverter_version)
        )
    state = ctx.progress_state
    after, done = state.get("last_key"), int(state.get("recovered", 0))
    page = int(options.get("page_size", 50))
    while True:
        ctx.report("recovering", done)
        rows = conn.execute(query("adopted_page"), {"adopted_id": adopted_id, "after": after, "page": page}).fetchall()
        if not rows:
            break
        # Row by row (each up to max_seconds): each one committed with the position after it, so a
        # cancelled, stopped or taken-over job loses at most the row in hand.
        for pk, embedding in rows:
            result = invert(
                model,
                encoder,
                registry.as_array(embedding),
                steps=steps,
                beam_width=beam_width,
                max_seconds=max_seconds,
            )
            details = {
                "steps": steps,
                "steps_run": result.steps_run,
                "beam_width": beam_width,
                "timed_out": result.timed_out,
                "encoder": encoder_version.label,
                "inverter": inverter_version.label,
            }
            conn.execute(
                query("put_recovered"),
                {
                    "adopted_id": adopted_id,
                    "pk": pk,
                    "body": result.text,
                    "similarity": result.cosine,
                    "model_id": job["model_id"],
                    "reference_model_id": inverter_version.id,
                    "job_id": ctx.id,
                    "details": Jsonb(details),
                },
            )
            after, done = pk, done + 1
            ctx.progress(last_key=after, recovered=done)
            ctx.report("recovering", done)
        ctx.save_progress()
