"""Filling a map's gaps: a 2D point decoded to a vector, then to text.

For a coordinate: the decoder's vector, the nearest stored text to it
(vk.recover over pgvector), and, when a vec2text inverter exists for the
source model, generated text with its cosine to the decoded vector and where
that text lands on the map when embedded again ("target accuracy": the
distance from the asked point, as a fraction of the map's extent).
"""

from typing import Any

import numpy as np
import psycopg

from vectorkeep.db import artifacts, registry
from vectorkeep.db.records import ModelVersion
from vectorkeep.sql import query
from vectorkeep.workers.encoder_cache import EncoderCache


def extent(conn: psycopg.Connection, version: ModelVersion) -> float:
    points = np.array([(x, y) for _, x, y in conn.execute(query("map_coordinates"), {"model_id": version.id})])
    return float(np.linalg.norm(points.max(axis=0) - points.min(axis=0))) if len(points) else 1.0


def fill(
    conn: psycopg.Connection,
    version: ModelVersion,
    x: float,
    y: float,
    *,
    encoders: EncoderCache | None = None,
    invert_steps: int = 1,
) -> dict[str, Any]:
    # Imported here: torch and scikit-learn are 3 s of every command line's start otherwise.
    from vectorkeep.workers.maps.umap import MapModel

    model = MapModel.load(version.params, artifacts.load(conn, version))
    vector = model.from_2d(np.array([[x, y]]))[0]
    source = registry.by_id(conn, int(version.params["source_model_id"]))
    collection = conn.execute(query("collection_name"), {"id": version.params["collection_id"]}).fetchone()
    assert collection is not None
    nearest = conn.execute(
        query("recover_nearest"), {"query": vector, "model": source.label, "k": 1, "collection": collection[0]}
    ).fetchone()
    out: dict[str, Any] = {
        "x": round(x, 4),
        "y": round(y, 4),
        "nearest_pk": nearest[1] if nearest else None,
        "nearest_text": nearest[2] if nearest else None,
        "nearest_similarity": round(float(nearest[3]), 4) if nearest else None,
        "generated_text": None,
        "vector": [round(float(v), 6) for v in vector],
    }
    inverter = conn.execute(query("inverters_for"), {"model_id": source.id}).fetchone()
    if inverter is None:
        return out
    from vectorkeep.workers.inversion import model as inverter_model
    from vectorkeep.workers.inversion.invert import invert

    inverter_version = registry.by_id(conn, inverter[0])
    encoder = (encoders or EncoderCache()).get(conn, source)
    inverter_net = inverter_model.from_artifact(
        inverter_version.params["encoder_source"], inverter_version.params, artifacts.load(conn, inverter_version)
    )
    result = invert(inverter_net, encoder, vector, steps=invert_steps, beam_width=4)
    landed = model.to_2d(encoder.encode([result.text]))[0]
    out.update(
        generated_text=result.text,
        generated_cosine=round(result.cosine, 4),
        inverter=inverter_version.label,
        landed_x=round(float(landed[0]), 4),
        landed_y=round(float(landed[1]), 4),
        target_error=round(float(np.hypot(landed[0] - x, landed[1] - y)) / extent(conn, version), 4),
    )
    return out


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
            if f.get("landed_x") is not None:
                ax.annotate("", (f["landed_x"], f["landed_y"]), (f["x"], f["y"]), arrowprops={"arrowstyle": "->"})
    ax.set_title(
        f"{version.label}: {version.params.get('source')} vectors of collection {version.params.get('collection_id')}"
    )
    ax.legend(loc="best")
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
