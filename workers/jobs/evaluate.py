"""evaluate: how well text is recovered from vectors, by method, on held-out rows.

The rows are held out by the same stable hash as training (so an inverter
trained on this collection never saw them), and their texts are kept out of
the reference (vectorkeep.workers.recovery_evaluation). Methods: nearest,
the baseline (the nearest stored text other than the row's own); the
inverter named, else the best ready one for the encoder; and best, what the
recovery entry point answers.
"""

import logging

from vectorkeep.db import registry
from vectorkeep.sql import query
from vectorkeep.workers.jobs.runner import JobContext, JobOutcome
from vectorkeep.workers.jobs.training_inputs import CollectionPairs
from vectorkeep.workers.recovery import recovery_for
from vectorkeep.workers.recovery_evaluation import evaluate_recovery
from vectorkeep.workers.training import sample

log = logging.getLogger(__name__)


def run_evaluate(ctx: JobContext) -> JobOutcome:
    conn, job = ctx.conn, ctx.job
    options = job["params"].get("params", {})
    rows, holdout = int(options.get("rows", 50)), float(options.get("holdout", 0.1))
    model = registry.by_id(conn, job["model_id"])
    name_row = conn.execute(query("collection_name"), {"id": job["collection_id"]}).fetchone()
    assert name_row is not None
    collection = name_row[0]
    inverter_id = job["params"].get("inverter_model_id")
    with conn.transaction():
        recovery = recovery_for(
            conn, model, inverter=registry.by_id(conn, inverter_id) if inverter_id else None, options=options
        )
    if recovery.inverter is not None:
        # Never score an inverter on rows it learned from: hold out no more than it did.
        holdout = min(holdout, float(recovery.inverter.version.params.get("holdout", holdout)))
    ctx.report("sampling held-out rows", 0, rows)
    pairs = sample(CollectionPairs(ctx.url, job["collection_id"], model.id, "heldout", holdout), rows)
    if not pairs:
        raise ValueError(f"no held-out rows of {collection} have vectors of {model.label}")
    results = evaluate_recovery(recovery, pairs, collection=None, report=ctx.report)
    log.info("recovery evaluation on %d held-out rows of %s: %s", len(pairs), collection, results)
    return JobOutcome(
        metrics={"model": model.label, "collection": collection, "holdout": holdout, **results}, model_id=model.id
    )
