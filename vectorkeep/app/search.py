"""Search by text (encode the query with the collection's model, then vk.search) and rows similar to a row."""

from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from vectorkeep.db import registry
from vectorkeep.db.connect import connect
from vectorkeep.sql import query
from vectorkeep.workers.encoder_cache import EncoderCache

_encoders = EncoderCache()


def encode_query(
    conn: psycopg.Connection, collection: str, model: str | None, text: str, encoders: EncoderCache | None = None
) -> np.ndarray:
    """The query's vector under the model the collection is searched with."""
    version = registry.for_collection(conn, collection, model)
    encoder = (encoders or _encoders).get(conn, version)
    conn.commit()  # keeps a fingerprint recorded on this first load
    return encoder.encode([text])[0]


def search(
    url: str,
    collection: str,
    text: str,
    *,
    k: int = 10,
    model: str | None = None,
    chunks: bool = False,
    encoders: EncoderCache | None = None,
) -> list[dict[str, Any]]:
    """The nearest rows (each once), or with chunks=True the nearest chunks with their offsets."""
    with connect(url) as conn:
        vector = encode_query(conn, collection, model, text, encoders)
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                query("search_chunks" if chunks else "search"),
                {"collection": collection, "query": vector, "k": k, "model": model},
            ).fetchall()


def similar(url: str, collection: str, pk: str, *, k: int = 10, model: str | None = None) -> list[dict[str, Any]]:
    """The rows most similar to a stored row (vk.similar), itself excluded."""
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query("similar"), {"collection": collection, "pk": pk, "k": k, "model": model}).fetchall()
