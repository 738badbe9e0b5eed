"""train: the next version of a model, of any trainable kind of the registry (vectorkeep.db.kinds).

The version is reserved at the start (status training, linked to the job), so
a job taken over after a crash trains that same version again. At the end, in
one transaction: the artifact (sha256 recorded on the version), its dimension,
params, metrics and fingerprint, status ready, and a reembed job that fills
its vectors (and activates it when params.activate gives the gates).
"""

import logging
from dataclasses import replace
from typing import Any

from psycopg.types.json import Jsonb

from vectorkeep.db import kinds, registry
from vectorkeep.db.records import ModelVersion
from vectorkeep.sql import query
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders.registry import load_kind
from vectorkeep.workers.jobs import train_structure
from vectorkeep.workers.jobs.runner import JobContext, JobLost, JobOutcome, JobStopped
from vectorkeep.workers.jobs.training_inputs import CollectionInputs, CollectionPairs
from vectorkeep.workers.kinds import resolve, trainer
from vectorkeep.workers.recovery import NEAREST, Recovery, method_of, ranked_inverters
from vectorkeep.workers.recovery_evaluation import evaluate_recovery
from vectorkeep.workers.retrieval_evaluation import retrieval_metrics
from vectorkeep.workers.training import REFERENCES, Trained, TrainingRun, TrainSpec, sample

log = logging.getLogger(__name__)

HELDOUT_SAMPLE = 300
POOL_SAMPLE = 1000


def _reference(ctx: JobContext, spec: str | None = None) -> Any:
    """The teacher / reference model: the one named, else the collection's search default."""
    row = ctx.conn.execute(query("collection_name"), {"id": ctx.job["collection_id"]}).fetchone()
    assert row is not None
    name, default_model_id = row
    if spec:
        return registry.for_collection(ctx.conn, name, spec)
    return registry.by_id(ctx.conn, default_model_id) if default_model_id else None


def _collection(ctx: JobContext) -> str:
    row = ctx.conn.execute(query("collection_name"), {"id": ctx.job["collection_id"]}).fetchone()
    return str(row[0]) if row else f"collection {ctx.job['collection_id']}"


def _models(ctx: JobContext, spec: TrainSpec, reference: ModelVersion | None) -> dict[str, ModelVersion]:
    """The kind's `model` parameters besides the reference, as versions: the one named; else, for one that
    names an inverter, the best ready one of its kinds for the reference (vk.inverters_v1's order)."""
    found: dict[str, ModelVersion] = {}
    for param in spec.kind.params:
        if param.type != "model" or param.name in REFERENCES:
            continue
        named = spec.params.get(param.name)
        if named:
            found[param.name] = registry.by_spec(ctx.conn, str(named))
        elif reference is not None and "inverter" in param.roles:
            ranked = [v for v in ranked_inverters(ctx.conn, reference) if not param.kinds or v.kind in param.kinds]
            if ranked:
                found[param.name] = ranked[0]
    return found


def run_train(ctx: JobContext) -> JobOutcome:
    conn, job = ctx.conn, ctx.job
    spec = TrainSpec.from_job(job["params"])
    name, kind = spec.model, spec.kind
    snapshot = conn.execute(query("record_snapshot"), {"id": ctx.id, "collection_id": job["collection_id"]}).fetchone()
    log.info("train %s (%s) on %s", name, kind.name, snapshot[0] if snapshot else "?")

    model_id = job["model_id"]
    if model_id is None:
        row = conn.execute(
            query("reserve_model"), {"name": name, "kind": kind.name, "params": Jsonb(spec.params), "job_id": ctx.id}
        ).fetchone()
        assert row is not None
        model_id = int(row[0])
    ctx.progress(phase="training", model_id=model_id)
    collection_id = int(job["collection_id"])
    run = TrainingRun(
        collection_id,
        _collection(ctx),
        spec,
        _reference(ctx, spec.reference),
        CollectionInputs(ctx.url, conn, collection_id, spec.holdout),
        ctx.report,
    )
    try:
        run = replace(run, models=_models(ctx, spec, run.reference))
        trained = trainer(kind.name)(run)
        ctx.check()
        ctx.report("evaluating", 0)
        if kind.role in ("map", "next-vector"):
            metrics = train_structure.finish(ctx, kind.name, model_id, trained)
        else:
            metrics = _finish(ctx, run, model_id, trained)
    except (JobLost, JobStopped):
        raise  # the version stays reserved for whoever resumes the job
    except Exception:
        conn.execute(query("model_failed"), {"id": model_id})
        raise
    log.info(
        "trained %s: %s", registry.by_id(conn, model_id).label, {k: v for k, v in metrics.items() if "hist" not in k}
    )
    return JobOutcome(metrics=metrics, model_id=model_id)


def _finish(ctx: JobContext, run: TrainingRun, model_id: int, trained: Trained) -> dict[str, Any]:
    """Evaluate an encoder or an inverter, and store it in one transaction; an encoder is then embedded
    (a reembed job, activated when params.activate gives the gates) and its older versions retired
    beyond params.keep."""
    conn, spec = ctx.conn, run.spec
    if spec.kind.role == "inverter":
        evaluation, probe = _evaluate_inverter(ctx, model_id, trained, spec.holdout), None
    else:
        encoder = load_kind(spec.kind.name, trained.params, trained.artifact)
        heldout = sample(run.texts("heldout"), HELDOUT_SAMPLE)
        pool = sample(run.texts(), POOL_SAMPLE)
        reference = _reference_vectors(ctx, [pk for pk, _ in heldout + pool])
        evaluation = retrieval_metrics(encoder, heldout, pool, reference)
        probe = encoder.encode([registry.probe_text(conn)])[0]
    ctx.check()
    metrics = {**trained.metrics, **evaluation, "holdout": spec.holdout}
    with conn.transaction():
        registry.store_trained(
            conn,
            model_id,
            artifact=trained.artifact,
            dim=trained.dim,
            params=trained.params,
            metrics=metrics,
            fingerprint=probe,
        )
        if spec.kind.role != "encoder":  # an inverter makes text, not vectors: nothing to embed
            return metrics
        key = {"collection_id": ctx.job["collection_id"], "model_id": model_id}
        conn.execute(query("backfill"), key)
        reembed = conn.execute(
            query("submit_reembed"), {**key, "params": Jsonb({} if spec.gates is None else {"activate": spec.gates})}
        ).fetchone()
        assert reembed is not None
        metrics["reembed_job"] = reembed[0]
        if spec.keep is not None:
            row = conn.execute(
                query("keep_newest"), {"collection_id": ctx.job["collection_id"], "name": spec.model, "keep": spec.keep}
            ).fetchone()
            if row and row[0]:
                log.info("kept the %d newest versions of %s: retired %s", spec.keep, spec.model, ", ".join(row[0]))
                metrics["retired"] = row[0]
    return metrics


INVERTER_SAMPLE = 10
INVERTER_SECONDS = 2.0


def _evaluate_inverter(ctx: JobContext, model_id: int, trained: Trained, holdout: float) -> dict[str, Any]:
    """Recover held-out vectors of the encoder with the new inverter (a short time box each), beside the
    nearest other stored text; its mean cosine ranks it among the encoder's inverters (vk.inverters_v1)."""
    encoder_model = registry.by_id(ctx.conn, trained.params["encoder_model_id"])
    encoder = EncoderCache().get(ctx.conn, encoder_model)
    version = replace(registry.by_id(ctx.conn, model_id), params=trained.params, dim=trained.dim)
    path = kinds.kind(version.kind).inverter
    assert path is not None
    # A short look: one generation of two candidates for vec2text, a short search for edit search.
    options = {
        "max_seconds": min(INVERTER_SECONDS, float(trained.params.get("seconds", INVERTER_SECONDS))),
        "steps": 0,
        "beam_width": 2,
    }
    inverter = resolve(path)(version, trained.artifact, encoder, options)
    pairs = sample(
        CollectionPairs(ctx.url, ctx.job["collection_id"], encoder_model.id, "heldout", holdout), INVERTER_SAMPLE
    )
    if not pairs:
        return {}
    scores = evaluate_recovery(
        Recovery(ctx.conn, encoder_model, encoder, inverter, options), pairs, collection=None, report=ctx.report
    )
    mine, nearest = scores.get(method_of(version.kind), {}), scores.get(NEAREST, {})
    return {
        **{f"inversion_{k}": v for k, v in mine.items() if k != "model"},
        "nearest_token_f1": nearest.get("token_f1"),
        "nearest_mean_cosine": nearest.get("mean_cosine"),
    }


def _reference_vectors(ctx: JobContext, pks: list[str]) -> dict[str, Any] | None:
    reference = _reference(ctx)
    if reference is None:
        return None
    rows = ctx.conn.execute(
        query("row_vectors"), {"collection_id": ctx.job["collection_id"], "model_id": reference.id, "pks": pks}
    ).fetchall()
    return {pk: registry.as_array(v) for pk, v, _ in rows}
