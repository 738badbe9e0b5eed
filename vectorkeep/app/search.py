"""Search by text (vk.search with a text, encoded by a worker's text-query lane,
or here when no worker runs), hybrid keyword + vector ranking, and rows similar to a row.

A search a worker encodes needs psycopg only: numpy and the encoders (torch, transformers)
are imported when the text is encoded here, for want of a worker.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from vectorkeep.db.connect import connect
from vectorkeep.sql import query

if TYPE_CHECKING:
    import numpy as np

    from vectorkeep.workers.encoder_cache import EncoderCache

log = logging.getLogger(__name__)

# The encoders this process loaded for its searches (made at the first search encoded here).
_encoders: EncoderCache | None = None


def encode_query(
    conn: psycopg.Connection, collection: str, model: str | None, text: str, encoders: EncoderCache | None = None
) -> np.ndarray:
    """The query's vector under the model the collection is searched with, encoded in this process."""
    global _encoders
    from vectorkeep.db import registry
    from vectorkeep.workers.encoder_cache import EncoderCache

    if encoders is None:
        if _encoders is None:
            _encoders = EncoderCache()
        encoders = _encoders
    version = registry.for_collection(conn, collection, model)
    encoder = encoders.get(conn, version)
    conn.commit()  # keeps a fingerprint recorded on this first load
    return encoder.encode([text])[0]


def lane_running(conn: psycopg.Connection) -> bool:
    row = conn.execute(query("text_query_lane_running")).fetchone()
    return bool(row and row[0])


def search(
    url: str,
    collection: str,
    text: str,
    *,
    k: int = 10,
    model: str | None = None,
    chunks: bool = False,
    filter: dict[str, Any] | None = None,
    encoders: EncoderCache | None = None,
) -> list[dict[str, Any]]:
    """The nearest rows (each once), or with chunks=True the nearest chunks with their offsets.

    The text goes to the database as it is, and a running worker encodes it
    (milliseconds, and cached); only when none runs is the model loaded here.
    """
    with connect(url) as conn:
        query_: str | np.ndarray = text
        if not lane_running(conn):
            log.info("no worker answers text queries: loading the model here")
            query_ = encode_query(conn, collection, model, text, encoders)
        params = {"collection": collection, "query": query_, "k": k, "model": model, "filter": _jsonb(filter)}
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query("search_chunks" if chunks else "search"), params).fetchall()


def hybrid_search(
    url: str,
    collection: str,
    text: str,
    *,
    k: int = 10,
    model: str | None = None,
    filter: dict[str, Any] | None = None,
    keyword_weight: float | None = None,
    vector_weight: float | None = None,
    fusion: str | None = None,
) -> list[dict[str, Any]]:
    """Rows ranked by a fusion of a BM25 keyword list and a vector list (vk.hybrid_search); weights and
    fusion left None are the collection's settings."""
    params = {
        "fusion": fusion,
        "collection": collection,
        "query": text,
        "k": k,
        "model": model,
        "filter": _jsonb(filter),
        "keyword_weight": keyword_weight,
        "vector_weight": vector_weight,
    }
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query("hybrid_search"), params).fetchall()


def similar(
    url: str,
    collection: str,
    pk: str,
    *,
    k: int = 10,
    model: str | None = None,
    filter: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The rows most similar to a stored row (vk.similar), itself excluded."""
    params = {"collection": collection, "pk": pk, "k": k, "model": model, "filter": _jsonb(filter)}
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query("similar"), params).fetchall()


def _jsonb(value: dict[str, Any] | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)
