"""A map's gaps (empty regions between its rows), filled with decoded vectors and text, or drawn to a PNG.

numpy, the map models and matplotlib (vectorkeep.workers.map_gaps) are imported when a map is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg

from vectorkeep.db.connect import connect
from vectorkeep.sql import query

if TYPE_CHECKING:
    from vectorkeep.db.records import ModelVersion


@dataclass(frozen=True)
class GapSearch:
    """Where to look for gaps: a grid of cells a side; a gap is an empty cell with populated neighbours."""

    cells: int = 24
    min_neighbours: int = 3


@dataclass
class Gaps:
    gaps: list[dict[str, Any]] = field(default_factory=list)  # cell_x, cell_y, x, y, neighbours
    filled: list[dict[str, Any]] = field(default_factory=list)  # the first gaps decoded to vectors and text

    def summary(self) -> dict[str, Any]:
        """How well the filled gaps came out: texts landing back in their cell, and how many differ."""
        if not self.filled:
            return {"gaps": len(self.gaps), "filled": 0}
        texts = [f["text"] for f in self.filled]
        return {
            "gaps": len(self.gaps),
            "filled": len(self.filled),
            "in_cell": round(sum(bool(f.get("in_cell")) for f in self.filled) / len(self.filled), 3),
            "distinct_texts": len(set(texts)),
            "mean_cosine": round(sum(f["cosine"] for f in self.filled) / len(self.filled), 4),
            "methods": dict(
                sorted(
                    {m: sum(f["method"] == m for f in self.filled) for m in {f["method"] for f in self.filled}}.items()
                )
            ),
        }


def _find(conn: psycopg.Connection, version: ModelVersion, model: str, search: GapSearch, fill: int) -> Gaps:
    from vectorkeep.workers import map_gaps

    params = {"model": model, "cells": search.cells, "min_neighbours": search.min_neighbours}
    with conn.cursor() as cur:
        rows = cur.execute(query("map_gaps"), params).fetchall()
    found = [{"cell_x": r[0], "cell_y": r[1], "x": r[2], "y": r[3], "neighbours": r[4]} for r in rows]
    points = [(g["x"], g["y"]) for g in found[:fill]]
    return Gaps(found, map_gaps.fill(conn, version, points, cells=search.cells) if points else [])


def find_gaps(url: str, model: str, *, search: GapSearch | None = None, fill: int = 0) -> Gaps:
    """A map version's gaps, and the first `fill` of them decoded."""
    from vectorkeep.db import registry

    with connect(url) as conn:
        version = registry.by_spec(conn, model)
        return _find(conn, version, model, search or GapSearch(), fill)


def fill(url: str, model: str, x: float, y: float) -> dict[str, Any]:
    """A map coordinate decoded: its vector, the nearest stored text, and the recovered text with its method."""
    from vectorkeep.db import registry
    from vectorkeep.workers import map_gaps

    with connect(url) as conn:
        return map_gaps.fill(conn, registry.by_spec(conn, model), [(x, y)])[0]


def plot(url: str, model: str, out: str, *, search: GapSearch | None = None, fill: int = 0) -> Gaps:
    """Draw a map's rows, its gaps and the first `fill` gaps decoded, to a PNG; the gaps drawn."""
    from vectorkeep.db import registry
    from vectorkeep.workers import map_gaps

    with connect(url) as conn:
        version = registry.by_spec(conn, model)
        found = _find(conn, version, model, search or GapSearch(), fill)
        map_gaps.plot(conn, version, out, found.gaps, found.filled)
    return found
