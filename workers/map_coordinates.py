"""Coordinates of rows on maps: computed for the whole collection when a map is
trained, then kept current by the worker for every row it embeds."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import psycopg

from vectorkeep.db import artifacts, registry
from vectorkeep.db.records import ModelVersion
from vectorkeep.sql import query

if TYPE_CHECKING:
    # torch and scikit-learn load only when a map is used: they are 3 s of every command line's start.
    from vectorkeep.workers.families.umap.model import MapModel

log = logging.getLogger(__name__)

PAGE = 1000


class MapCache:
    """Map models loaded once per process (artifact checked by sha256 on load)."""

    def __init__(self) -> None:
        self._maps: dict[tuple[int, str], MapModel] = {}

    def get(self, conn: psycopg.Connection, version: ModelVersion) -> MapModel:
        key = (version.id, str(version.params.get("artifact_sha256")))
        if key not in self._maps:
            from vectorkeep.workers.families.umap.model import MapModel

            self._maps[key] = MapModel.load(version.params, artifacts.load(conn, version))
        return self._maps[key]


def place(
    conn: psycopg.Connection,
    map_version: ModelVersion,
    model: MapModel,
    collection_id: int,
    rows: Iterable[tuple[str, np.ndarray, bytes]],
) -> int:
    """Write the coordinates of (pk, vector, text sha256) rows on one map."""
    rows = list(rows)
    if not rows:
        return 0
    xy = model.to_2d(np.stack([v for _, v, _ in rows]))
    with conn.cursor() as cur:
        cur.executemany(
            query("upsert_coordinates"),
            [
                {
                    "collection_id": collection_id,
                    "pk": pk,
                    "model_id": map_version.id,
                    "x": float(x),
                    "y": float(y),
                    "text_sha256": sha,
                }
                for (pk, _, sha), (x, y) in zip(rows, xy, strict=True)
            ],
        )
    return len(rows)


def place_all(conn: psycopg.Connection, map_version: ModelVersion, model: MapModel) -> int:
    """Every row of the map's collection with a vector of its source model, a page at a time."""
    collection_id, source_id = int(map_version.params["collection_id"]), int(map_version.params["source_model_id"])
    done = 0
    with conn.cursor(name="vk_map_rows") as cur:
        cur.itersize = PAGE
        cur.execute(query("row_vectors"), {"collection_id": collection_id, "model_id": source_id, "pks": None})
        page: list[tuple[str, np.ndarray, bytes]] = []
        for pk, vector, sha in cur:
            page.append((pk, registry.as_array(vector), sha))
            if len(page) == PAGE:
                done += place(conn, map_version, model, collection_id, page)
                page = []
        done += place(conn, map_version, model, collection_id, page)
    return done


# Maps loaded once per process; keyed by version and artifact hash, so a
# process serving several databases never mixes them.
_maps = MapCache()


def follow_batch(
    conn: psycopg.Connection, collection_id: int, source: ModelVersion, rows: list[tuple[str, np.ndarray, bytes]]
) -> None:
    """The batch's step (workers/embed.py after_write): move its rows on their maps, with this process's maps."""
    follow(conn, _maps, collection_id, source, rows)


def follow(
    conn: psycopg.Connection,
    maps: MapCache,
    collection_id: int,
    source: ModelVersion,
    rows: list[tuple[str, np.ndarray, bytes]],
) -> None:
    """After a batch wrote new vectors of (collection, source): move those rows on every map drawn from them."""
    for (map_id,) in conn.execute(query("maps_of"), {"collection_id": collection_id, "model_id": source.id}).fetchall():
        version = registry.by_id(conn, map_id)
        place(conn, version, maps.get(conn, version), collection_id, rows)
