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
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg

from vectorkeep.db import artifacts, registry
from vectorkeep.db.records import ModelVersion
from vectorkeep.sql import query
from vectorkeep.workers.encoder_cache import EncoderCache


def bounds(conn: psycopg.Connection, version: ModelVersion) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 of the map's points (the grid vk.map_gaps divides)."""
    points = np.array([(x, y) for _, x, y in conn.execute(query("map_coordinates"), {"model_id": version.id})])
    if not len(points):
        return 0.0, 0.0, 1.0, 1.0
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


# Cosine a text gives up for each half-cell it lands outside its gap's cell, up to MAX_HALF_CELLS of them.
OUTSIDE_CELL = 0.05
MAX_HALF_CELLS = 4


def _outside_cell(model: Any, x: float, y: float, width: float, height: float) -> Callable[[np.ndarray], np.ndarray]:
    """A gap's objection to texts that land outside its cell on the map: 0 inside, growing with the distance."""

    def penalty(vectors: np.ndarray) -> np.ndarray:
        landed = model.to_2d(vectors)
        outside = np.maximum(np.abs(landed[:, 0] - x) / (width / 2), np.abs(landed[:, 1] - y) / (height / 2)) - 1
        # Capped: far off is far off, and the cosine stays what matters most.
        return OUTSIDE_CELL * np.clip(outside, 0.0, MAX_HALF_CELLS)  # type: ignore[no-any-return]

    return penalty


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
    from vectorkeep.workers.inversion.recovery import NEAREST, recovery_for
    from vectorkeep.workers.maps.umap import MapModel

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
        penalty = _outside_cell(model, x, y, (x1 - x0) / cells, (y1 - y0) / cells) if cells else None
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
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    points = np.array([(x, y) for _, x, y in conn.execute(query("map_coordinates"), {"model_id": version.id})])
    fig, ax = plt.subplots(figsize=(8, 8))
    if len(points):
        ax.scatter(points[:, 0], points[:, 1], s=6, c="#4477aa", alpha=0.6, label=f"rows ({len(points)})")
    if gaps:
        ax.scatter(
            [g["x"] for g in gaps],
            [g["y"] for g in gaps],
            s=60,
            marker="s",
            facecolors="none",
            edgecolors="#cc6677",
            label=f"gaps ({len(gaps)})",
        )
    if filled:
        ax.scatter([f["x"] for f in filled], [f["y"] for f in filled], s=80, marker="*", c="#228833", label="filled")
        for f in filled:
            if f.get("landed_x") is not None and (f["landed_x"], f["landed_y"]) != (f["x"], f["y"]):
                ax.annotate("", (f["landed_x"], f["landed_y"]), (f["x"], f["y"]), arrowprops={"arrowstyle": "->"})
    ax.set_title(
        f"{version.label}: {version.params.get('source')} vectors of collection {version.params.get('collection_id')}"
    )
    ax.legend(loc="best")
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
