"""evaluate: how well text is recovered from vectors, by method, on held-out rows.

The rows are held out by the same stable hash as training (so an inverter
trained on this collection never saw them). Method nearest, the baseline:
the nearest stored text other than the row itself. Method vec2text: the
inverter's text. Each is scored against the real text: exact match, token
F1, BLEU (sacrebleu) and the mean cosine of the recovered text, re-embedded,
to the target vector.
"""

import logging
from typing import Any

from vectorkeep.db import artifacts, registry
from vectorkeep.sql import query
from vectorkeep.workers.arrays import l2_normalize
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.inversion import metrics
from vectorkeep.workers.inversion import model as inverter_model
from vectorkeep.workers.inversion.invert import invert
from vectorkeep.workers.jobs.runner import JobContext, JobOutcome
from vectorkeep.workers.trainers.data import CollectionPairs, sample

log = logging.getLogger(__name__)


def run_evaluate(ctx: JobContext) -> JobOutcome:
    conn, job = ctx.conn, ctx.job
    options = job["params"].get("params", {})
    rows, holdout = int(options.get("rows", 50)), float(options.get("holdout", 0.1))
    model = registry.by_id(conn, job["model_id"])
    name_row = conn.execute(query("collection_name"), {"id": job["collection_id"]}).fetchone()
    assert name_row is not None
    collection = name_row[0]
    ctx.report("sampling held-out rows", 0, rows)
    pairs = sample(CollectionPairs(ctx.url, job["collection_id"], model.id, "heldout", holdout), rows)
    if not pairs:
        raise ValueError(f"no held-out rows of {collection} have vectors of {model.label}")
    with conn.transaction():
        encoder = EncoderCache().get(conn, model)
    references = [text for _, text, _ in pairs]

    found = []
    for i, (pk, _, vector) in enumerate(pairs):
        ctx.report("nearest", i, len(pairs))
        hit = conn.execute(
            query("nearest_other"), {"vector": vector, "model": model.label, "collection": collection, "pk": pk}
        ).fetchone()
        found.append(hit[1] if hit else "")
    cosines = [
        float(l2_normalize(v) @ l2_normalize(e))
        for v, e in zip([p[2] for p in pairs], encoder.encode(found), strict=True)
    ]
    results: dict[str, Any] = {"nearest": metrics.summary(found, references, cosines)}
    ctx.report("nearest", len(pairs), len(pairs))

    if job["params"].get("inverter_model_id"):
        inverter_version = registry.by_id(conn, job["params"]["inverter_model_id"])
        inverter = inverter_model.from_artifact(
            inverter_version.params["encoder_source"], inverter_version.params, artifacts.load(conn, inverter_version)
        )
        inversions = []
        for i, (_, _, vector) in enumerate(pairs):
            ctx.report("vec2text", i, len(pairs))
            inversions.append(
                invert(
                    inverter,
                    encoder,
                    vector,
                    steps=int(options.get("steps", 1)),
                    beam_width=int(options.get("beam_width", 4)),
                    max_seconds=float(options.get("max_seconds", 10.0)),
                )
            )
        ctx.report("vec2text", len(pairs), len(pairs))
        results["vec2text"] = {
            **metrics.summary([r.text for r in inversions], references, [r.cosine for r in inversions]),
            "inverter": inverter_version.label,
        }
    log.info("recovery evaluation on %d held-out rows of %s: %s", len(pairs), collection, results)
    return JobOutcome(metrics={"model": model.label, "collection": collection, **results}, model_id=model.id)
