"""Storing models of a collection's vectors rather than its text: maps (umap) and
next-vector models (lvm-lstm, lvm-gru, lvm-transformer), trained by the train job.

Both learn from the vectors of a source model version (params.source, else
the collection's search default; their trainers are in
vectorkeep.workers.families.umap and .next_vector), record the collection and
source on the version, and store plain arrays as the artifact. A map then
places every row (vk.coordinates, kept current by the workers from then on);
a next-vector model is ready to be gated by vk.activate.
"""

import logging
from typing import Any

from vectorkeep.db import registry
from vectorkeep.sql import query
from vectorkeep.workers import map_coordinates as coordinates
from vectorkeep.workers.families.umap import model as umap
from vectorkeep.workers.jobs.runner import JobContext
from vectorkeep.workers.training import Trained

log = logging.getLogger(__name__)


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
