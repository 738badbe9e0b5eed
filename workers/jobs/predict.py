"""predict: the next vector of a group by a next-vector model, stored in vk.predictions.

Asked for from SQL (vk.predict_next); the nearest stored texts to the answer
come from vk.predicted(job_id), a pgvector search by the source model.
"""

import numpy as np

from vectorkeep.db import artifacts, registry
from vectorkeep.sql import query
from vectorkeep.workers.jobs.runner import JobContext, JobOutcome
from vectorkeep.workers.sequences import lvm


def run_predict(ctx: JobContext) -> JobOutcome:
    conn, job = ctx.conn, ctx.job
    version = registry.by_id(conn, job["model_id"])
    group_key = str(job["params"]["group_key"])
    context = int(version.params["context"])
    # Three short steps, each reported (a cancelled job stops between them).
    ctx.report("reading the group", 0, 3, "steps")
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
    ctx.report("predicting", 1, 3, "steps")
    model = lvm.load(version.kind, version.params, artifacts.load(conn, version))
    vector = lvm.predict(model, np.stack([registry.as_array(v) for _, v in tail]))
    ctx.report("storing", 2, 3, "steps")
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
    ctx.report("storing", 3, 3, "steps")
    return JobOutcome(metrics={"group_key": group_key, "context": [pk for pk, _ in tail]}, model_id=version.id)
