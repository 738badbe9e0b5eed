"""Models of a collection's vectors rather than its text: maps (umap) and
next-vector models (lvm-lstm, lvm-gru, lvm-transformer), trained by the train job.

Both learn from the vectors of a source model version (params.source, else
the collection's search default), record the collection and source on the
version, and store plain arrays as the artifact. A map then places every row
(vk.coordinates, kept current by the workers from then on); a next-vector
model is ready to be gated by vk.activate.
"""

import logging
from typing import Any

import numpy as np

from vectorkeep.db import registry
from vectorkeep.db.records import ModelVersion
from vectorkeep.sql import query
from vectorkeep.workers import map_coordinates as coordinates
from vectorkeep.workers.families.next_vector import lvm
from vectorkeep.workers.families.umap import model as umap
from vectorkeep.workers.jobs.runner import JobContext
from vectorkeep.workers.trainers.result import Trained
from vectorkeep.workers.trainers.run import TrainingRun

log = logging.getLogger(__name__)

MAX_MAP_ROWS = 20_000


def _base(run: TrainingRun) -> tuple[ModelVersion, dict[str, Any]]:
    source = run.require_reference("a model's vectors")
    # activate and gates both become the version's own gates (vk.activate checks them).
    gates = {**(run.params.get("gates") or {}), **(run.spec.gates or {})}
    params = {**run.params, **({"gates": gates} if gates else {})}
    return source, {**params, "collection_id": run.collection_id, "source_model_id": source.id, "source": source.label}


def train_map(run: TrainingRun) -> Trained:
    source, base = _base(run)
    rows = run.conn.execute(
        query("row_vectors"), {"collection_id": run.collection_id, "model_id": source.id, "pks": None}
    ).fetchall()
    if len(rows) > MAX_MAP_ROWS:  # the exact neighbour graph is quadratic: a stable sample
        rows = rows[:: len(rows) // MAX_MAP_ROWS + 1]
    model, metrics = umap.train(np.stack([registry.as_array(v) for _, v, _ in rows]), run.params, run.report)
    return Trained(umap.artifact(model), 2, {**base, **model.params}, metrics)


def train_next_vector(run: TrainingRun) -> Trained:
    source, base = _base(run)
    p, kind = run.params, run.spec.kind.name
    rows = run.conn.execute(
        query("sequence_windows"),
        {"collection_id": run.collection_id, "model_id": source.id, "context": int(p["context"])},
    ).fetchall()
    windows = lvm.Windows.from_rows(
        [(g, [registry.as_array(v) for v in context], registry.as_array(t)) for g, _, context, t in rows],
        int(p["context"]),
        source.dim,
    )
    model, metrics = lvm.train(windows, kind, p, run.report)
    return Trained(lvm.artifact(model), source.dim, {**base, **p, "dim": source.dim}, metrics)


def finish(ctx: JobContext, kind: str, model_id: int, trained: Trained) -> dict[str, Any]:
    """Store the version; a map also gets its row in vk.maps and every row's coordinates."""
    conn = ctx.conn
    with conn.transaction():
        registry.store_trained(
            conn,
            model_id,
            artifact=trained.artifact,
            dim=trained.dim,
            params=trained.params,
            metrics=trained.metrics,
            fingerprint=None,
        )
        if kind == "umap":
            version = registry.by_id(conn, model_id)
            conn.execute(
                query("add_map"),
                {
                    "model_id": model_id,
                    "collection_id": trained.params["collection_id"],
                    "source_model_id": trained.params["source_model_id"],
                },
            )
            ctx.progress(phase="placing rows")
            placed = coordinates.place_all(conn, version, umap.MapModel.load(version.params, trained.artifact))
            log.info("%s placed %d rows", version.label, placed)
            return {**trained.metrics, "placed": placed}
    return trained.metrics
