"""train: the next version of a model, trained on a collection's text.

The version is reserved at the start (status training, linked to the job), so
a job taken over after a crash trains that same version again. At the end, in
one transaction: the artifact (sha256 recorded on the version), its dimension,
params, metrics and fingerprint, status ready, and a reembed job that fills
its vectors (and activates it when params.activate gives the gates).
"""

import logging
from typing import Any

from psycopg.types.json import Jsonb

from vectorkeep.db import artifacts, registry
from vectorkeep.sql import query
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders.registry import load_kind
from vectorkeep.workers.inversion import metrics as recovery_metrics
from vectorkeep.workers.inversion import model as inverter_model
from vectorkeep.workers.inversion.invert import invert
from vectorkeep.workers.jobs import train_structure
from vectorkeep.workers.jobs.runner import JobContext, JobLost, JobOutcome, JobStopped
from vectorkeep.workers.trainers import doc2vec, tfidf, tfidf_mlp, vec2text
from vectorkeep.workers.trainers.data import CollectionPairs, CollectionTexts, sample
from vectorkeep.workers.trainers.evaluate import retrieval_metrics
from vectorkeep.workers.trainers.result import Trained

log = logging.getLogger(__name__)

HELDOUT_SAMPLE = 300
POOL_SAMPLE = 1000


def _train(ctx: JobContext, kind: str, texts: CollectionTexts, params: dict[str, Any]) -> Trained:
    if kind == "vec2text-inverter":
        encoder = _reference(ctx, params.get("encoder"))
        if encoder is None:
            raise ValueError("an inverter is trained for an encoder version: the collection has none")
        return vec2text.train(ctx.url, ctx.job["collection_id"], encoder, texts.holdout, params)
    if kind == "doc2vec":
        return doc2vec.train(texts, params)
    if kind == "tfidf":
        return tfidf.train(texts, params)
    if kind == "tfidf-mlp":
        teacher = _reference(ctx, params.get("teacher"))
        if teacher is None:
            raise ValueError("tfidf-mlp learns from a teacher model's vectors: the collection has none")
        return tfidf_mlp.train(
            texts,
            params,
            url=ctx.url,
            collection_id=ctx.job["collection_id"],
            teacher_id=teacher.id,
            teacher_dim=teacher.dim,
        )
    raise ValueError(f"cannot train a model of kind {kind!r}")


def _reference(ctx: JobContext, spec: str | None = None) -> Any:
    """The teacher / reference model: the one named, else the collection's search default."""
    row = ctx.conn.execute(query("collection_name"), {"id": ctx.job["collection_id"]}).fetchone()
    assert row is not None
    name, default_model_id = row
    if spec:
        return registry.for_collection(ctx.conn, name, spec)
    return registry.by_id(ctx.conn, default_model_id) if default_model_id else None


def run_train(ctx: JobContext) -> JobOutcome:
    conn, job = ctx.conn, ctx.job
    spec = job["params"]
    name, kind, params = spec["model"], spec["kind"], dict(spec.get("params") or {})
    holdout = float(params.pop("holdout", 0.1))
    gates = params.pop("activate", None)
    snapshot = conn.execute(query("record_snapshot"), {"id": ctx.id, "collection_id": job["collection_id"]}).fetchone()
    log.info("train %s (%s) on %s", name, kind, snapshot[0] if snapshot else "?")

    model_id = job["model_id"]
    if model_id is None:
        row = conn.execute(
            query("reserve_model"), {"name": name, "kind": kind, "params": Jsonb(params), "job_id": ctx.id}
        ).fetchone()
        assert row is not None
        model_id = int(row[0])
    ctx.progress(phase="training", model_id=model_id)
    if kind in train_structure.STRUCTURE_KINDS:
        return _train_structure(ctx, kind, {**params, **({"gates": gates} if gates else {})}, model_id)
    try:
        texts = CollectionTexts(ctx.url, job["collection_id"], "train", holdout)
        trained = _train(ctx, kind, texts, params)
        ctx.check()
        ctx.progress(phase="evaluating")
        if kind == "vec2text-inverter":
            evaluation, probe = _evaluate_inverter(ctx, trained, holdout), None
        else:
            encoder = load_kind(kind, trained.params, trained.artifact)
            heldout = sample(CollectionTexts(ctx.url, job["collection_id"], "heldout", holdout), HELDOUT_SAMPLE)
            pool = sample(texts, POOL_SAMPLE)
            reference = _reference_vectors(ctx, [pk for pk, _ in heldout + pool])
            evaluation = retrieval_metrics(encoder, heldout, pool, reference)
            probe = encoder.encode([registry.probe_text(conn)])[0]
        ctx.check()
        with conn.transaction():
            sha = artifacts.store(conn, model_id, trained.artifact)
            metrics = {**trained.metrics, **evaluation, "holdout": holdout}
            conn.execute(
                query("model_trained"),
                {
                    "id": model_id,
                    "dim": trained.dim,
                    "params": Jsonb({**trained.params, "artifact_sha256": sha}),
                    "metrics": Jsonb(metrics),
                    "fingerprint": probe,
                },
            )
            reembed = None
            if kind != "vec2text-inverter":  # an inverter makes text, not vectors: nothing to embed
                key = {"collection_id": job["collection_id"], "model_id": model_id}
                conn.execute(query("embed_with"), key)
                reembed = conn.execute(
                    query("submit_reembed"), {**key, "params": Jsonb({} if gates is None else {"activate": gates})}
                ).fetchone()
    except (JobLost, JobStopped):
        raise  # the version stays reserved for whoever resumes the job
    except Exception:
        conn.execute(query("model_failed"), {"id": model_id})
        raise
    log.info("trained %s: %s", registry.by_id(conn, model_id).label, evaluation)
    if reembed is not None:
        metrics["reembed_job"] = reembed[0]
    return JobOutcome(metrics=metrics, model_id=model_id)


def _train_structure(ctx: JobContext, kind: str, params: dict[str, Any], model_id: int) -> JobOutcome:
    """A map or a next-vector model: learned from the source model's vectors, not from text."""
    try:
        source = _reference(ctx, params.pop("source", None))
        if source is None:
            raise ValueError(f"a {kind} model learns from a model's vectors: the collection has none")
        trained = train_structure.train(ctx, kind, params, source)
        ctx.check()
        metrics = train_structure.finish(ctx, kind, model_id, trained)
    except (JobLost, JobStopped):
        raise
    except Exception:
        ctx.conn.execute(query("model_failed"), {"id": model_id})
        raise
    log.info(
        "trained %s: %s",
        registry.by_id(ctx.conn, model_id).label,
        {k: v for k, v in metrics.items() if "hist" not in k},
    )
    return JobOutcome(metrics=metrics, model_id=model_id)


INVERTER_SAMPLE = 20


def _evaluate_inverter(ctx: JobContext, trained: Trained, holdout: float) -> dict[str, Any]:
    """Invert held-out vectors of the encoder; compare with their texts (and re-embed for the cosine)."""
    encoder_model = registry.by_id(ctx.conn, trained.params["encoder_model_id"])
    encoder = EncoderCache().get(ctx.conn, encoder_model)
    model = inverter_model.from_artifact(trained.params["encoder_source"], trained.params, trained.artifact)
    pairs = sample(
        CollectionPairs(ctx.url, ctx.job["collection_id"], encoder_model.id, "heldout", holdout), INVERTER_SAMPLE
    )
    results = [invert(model, encoder, vector, steps=0, beam_width=2) for _, _, vector in pairs]
    return {
        f"inversion_{k}": v
        for k, v in recovery_metrics.summary(
            [r.text for r in results], [text for _, text, _ in pairs], [r.cosine for r in results]
        ).items()
    }


def _reference_vectors(ctx: JobContext, pks: list[str]) -> dict[str, Any] | None:
    reference = _reference(ctx)
    if reference is None:
        return None
    rows = ctx.conn.execute(
        query("row_vectors"), {"collection_id": ctx.job["collection_id"], "model_id": reference.id, "pks": pks}
    ).fetchall()
    return {pk: registry.as_array(v) for pk, v, _ in rows}
