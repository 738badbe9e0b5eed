"""Filling a map's gaps: a 2D point decoded to a vector, then to text.

For a coordinate: the decoder's vector, the nearest stored text to it
(vk.recover over pgvector), and the text the recovery entry point answers
(the best ready inverter for the source model, kept where it beats the
nearest stored text), with its method, version and cosine to the decoded
vector, and where that text lands on the map when embedded again ("target
error": the distance from the asked point, as a fraction of the map's
extent; "in_cell": whether it lands inside the gap's grid cell). Given the
grid, the search also counts where its candidates land: a text outside the
cell gives up OUTSIDE_CELL of cosine a half-cell (at most 0.2).

The geometry (the grid's bounds, a gap's cell, the figure) is the umap
family's (vectorkeep.workers.families.umap.gaps); this module reads the map
and its coordinates from the database and recovers the texts.
"""

from typing import Any

import numpy as np
import psycopg

from vectorkeep.db import artifacts, registry
from vectorkeep.db.records import ModelVersion
from vectorkeep.sql import query
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.families.umap.gaps import bounds_of, draw, outside_cell


def map_points(conn: psycopg.Connection, version: ModelVersion) -> np.ndarray:
    """The map's points: (x, y) of every row placed on it."""
    return np.array([(x, y) for _, x, y in conn.execute(query("map_coordinates"), {"model_id": version.id})])


def bounds(conn: psycopg.Connection, version: ModelVersion) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 of the map's points (the grid vk.map_gaps divides)."""
    return bounds_of(map_points(conn, version))


def fill(
    conn: psycopg.Connection,
    version: ModelVersion,
    points: list[tuple[float, float]],
    *,
    cells: int | None = None,
    encoders: EncoderCache | None = None,
) -> list[dict[str, Any]]:
    """Each point decoded and recovered; cells: the grid of vk.map_gaps, to tell whether a text lands in its cell."""
    # Imported here: torch and scikit-learn are 3 s of every command line's start otherwise.
    from vectorkeep.workers.families.umap.model import MapModel
    from vectorkeep.workers.recovery import NEAREST, recovery_for

    model = MapModel.load(version.params, artifacts.load(conn, version))
    source = registry.by_id(conn, int(version.params["source_model_id"]))
    collection = conn.execute(query("collection_name"), {"id": version.params["collection_id"]}).fetchone()
    assert collection is not None
    x0, y0, x1, y1 = bounds(conn, version)
    extent = float(np.hypot(x1 - x0, y1 - y0)) or 1.0
    with conn.transaction():
        recovery = recovery_for(conn, source, encoders=encoders)
    filled = []
    for x, y in points:
        vector = model.from_2d(np.array([[x, y]]))[0]
        penalty = outside_cell(model, x, y, (x1 - x0) / cells, (y1 - y0) / cells) if cells else None
        recovered = recovery.recover(vector, collection=collection[0], penalty=penalty)
        nearest = next((a for a in recovered.tried if a.method == NEAREST), None)
        best = recovered.best
        landed = model.to_2d(recovery.encoder.encode([best.text]))[0]
        out: dict[str, Any] = {
            "x": round(x, 4),
            "y": round(y, 4),
            "nearest_pk": nearest.source_pk if nearest else None,
            "nearest_text": nearest.text if nearest else None,
            "nearest_similarity": round(nearest.cosine, 4) if nearest else None,
            "text": best.text,
            "method": best.method,
            "model": best.model,
            "cosine": round(best.cosine, 4),
            "landed_x": round(float(landed[0]), 4),
            "landed_y": round(float(landed[1]), 4),
            "target_error": round(float(np.hypot(landed[0] - x, landed[1] - y)) / extent, 4),
            "tried": [{"method": a.method, "model": a.model, "cosine": round(a.cosine, 4)} for a in recovered.tried],
            "vector": [round(float(v), 6) for v in vector],
        }
        if cells:
            out["in_cell"] = bool(
                abs(landed[0] - x) <= (x1 - x0) / cells / 2 and abs(landed[1] - y) <= (y1 - y0) / cells / 2
            )
        filled.append(out)
    return filled


def plot(
    conn: psycopg.Connection, version: ModelVersion, out: str, gaps: list[dict[str, Any]], filled: list[dict[str, Any]]
) -> None:
    """Points, gaps and filled points (with where their generated text landed) as a PNG."""
    title = (
        f"{version.label}: {version.params.get('source')} vectors of collection {version.params.get('collection_id')}"
    )
    draw(map_points(conn, version), title, out, gaps, filled)
