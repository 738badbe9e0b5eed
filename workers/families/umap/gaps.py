"""A map's gaps as geometry: the grid's bounds, a gap's objection to texts landing outside its cell,
and the figure of points, gaps and filled points. The database side (reading the map's points,
recovering texts) is vectorkeep.workers.map_gaps."""

from collections.abc import Callable
from typing import Any

import numpy as np

# Cosine a text gives up for each half-cell it lands outside its gap's cell, up to MAX_HALF_CELLS of them.
OUTSIDE_CELL = 0.05
MAX_HALF_CELLS = 4


def bounds_of(points: np.ndarray) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 of a map's points (the grid vk.map_gaps divides); the unit square for none."""
    if not len(points):
        return 0.0, 0.0, 1.0, 1.0
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def outside_cell(model: Any, x: float, y: float, width: float, height: float) -> Callable[[np.ndarray], np.ndarray]:
    """A gap's objection to texts that land outside its cell on the map: 0 inside, growing with the distance."""

    def penalty(vectors: np.ndarray) -> np.ndarray:
        landed = model.to_2d(vectors)
        outside = np.maximum(np.abs(landed[:, 0] - x) / (width / 2), np.abs(landed[:, 1] - y) / (height / 2)) - 1
        # Capped: far off is far off, and the cosine stays what matters most.
        return OUTSIDE_CELL * np.clip(outside, 0.0, MAX_HALF_CELLS)  # type: ignore[no-any-return]

    return penalty


def draw(points: np.ndarray, title: str, out: str, gaps: list[dict[str, Any]], filled: list[dict[str, Any]]) -> None:
    """Points, gaps and filled points (with where their generated text landed) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

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
    ax.set_title(title)
    ax.legend(loc="best")
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
