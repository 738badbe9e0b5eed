"""predict: the next vector of a group by a next-vector model, stored in vk.predictions.

Asked for from SQL (vk.predict_next). When an inverter is ready for the
source model, the recovery entry point turns the vector into text (kept only
where it beats the nearest stored text), stored with its method, version and
cosine; vk.predicted(job_id) gives it, then the nearest stored texts.
"""

from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from vectorkeep.db import artifacts, registry
from vectorkeep.sql import query
from vectorkeep.workers.families.next_vector import lvm
from vectorkeep.workers.jobs.runner import JobContext, JobOutcome
from vectorkeep.workers.recovery import ranked_inverters, recovery_for


def run_predict(ctx: JobContext) -> JobOutcome:
    conn, job = ctx.conn, ctx.job
    version = registry.by_id(conn, job["model_id"])
    group_key = str(job["params"]["group_key"])
    context = int(version.params["context"])
    # Short steps, each reported (a cancelled job stops between them).
    ctx.report("reading the group", 0, 4, "steps")
    tail = conn.execute(
        query("group_tail"),
        {
            "collection_id": job["collection_id"],
            "model_id": version.params["source_model_id"],
            "group_key": group_key,
            "n": context,
        },
    ).fetchall()
    if len(tail) < context:
        raise ValueError(f"group {group_key!r} has {len(tail)} embedded rows; {version.label} needs {context}")
    ctx.report("predicting", 1, 4, "steps")
    model = lvm.load(version.kind, version.params, artifacts.load(conn, version))
    vector = lvm.predict(model, np.stack([registry.as_array(v) for _, v in tail]))
    ctx.report("storing", 2, 4, "steps")
    with conn.transaction():
        conn.execute(
            query("put_prediction"),
            {
                "job_id": ctx.id,
                "collection_id": job["collection_id"],
                "model_id": version.id,
                "group_key": group_key,
                "context_pks": [pk for pk, _ in tail],
                "vector": vector,
            },
        )
    ctx.report("recovering its text", 3, 4, "steps")
    metrics: dict[str, Any] = {"group_key": group_key, "context": [pk for pk, _ in tail]}
    source = registry.by_id(conn, int(version.params["source_model_id"]))
    if ranked_inverters(conn, source):
        with conn.transaction():
            recovered = recovery_for(conn, source).recover(vector)
            best = recovered.best
            text = {"body": best.text, "method": best.method, "model": best.model, "similarity": best.cosine}
            conn.execute(
                query("put_prediction_text"), {"job_id": ctx.id, "recovered": Jsonb({**text, **recovered.details()})}
            )
        metrics["recovered"] = text
    ctx.report("recovering its text", 4, 4, "steps")
    return JobOutcome(metrics=metrics, model_id=version.id)
