"""recover: text for every row of an adopted vector-only table, into vk.recovered.

Keyset pages of the legacy table, progress (the last key) saved after each
page, so a job taken over resumes. Method nearest runs in SQL: each vector's
nearest stored text among the collections embedded with the reference
version, with its similarity and source row.
"""

import logging

from vectorkeep.sql import query
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
    if method != "nearest":
        raise ValueError(f"recovery method {method!r} is not available; use nearest")
    state = ctx.progress_state
    after, done = state.get("last_key"), int(state.get("recovered", 0))
    page = int(params.get("params", {}).get("page_size", PAGE))
    while True:
        ctx.check()
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
        ctx.save_progress()
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
