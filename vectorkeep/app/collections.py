"""Watched tables: attach one as a collection, set how its rows are cut into chunks."""

from typing import Any

import psycopg

from vectorkeep.db.connect import connect
from vectorkeep.sql import query
from vectorkeep.workers.chunking import METHODS, Chunking

__all__ = ["METHODS", "Chunking", "attach", "set_chunking"]


def _set_chunking(conn: psycopg.Connection, collection: str, chunking: Chunking) -> dict[str, Any]:
    params = {"collection": collection, "method": chunking.method, "size": chunking.size, "overlap": chunking.overlap}
    row = conn.execute(query("set_chunking"), params).fetchone()
    assert row is not None
    return {"collection": row[0], "chunking": row[1]}


def attach(
    url: str,
    table: str,
    *,
    pk: str,
    text: str,
    model: str = "minilm",
    name: str | None = None,
    chunking: Chunking | None = None,
    row_security: str = "refuse",
    metadata: str | None = None,
) -> str:
    """Watch a table (vk.attach): its rows are queued now and on every INSERT/UPDATE; the collection's name.

    row_security "copy" attaches a table with row-level security anyway (its copied text follows
    table privileges only); "refuse", the default, refuses it. metadata: an SQL expression over
    the table's columns returning a jsonb object, which searches can filter on."""
    with connect(url) as conn:
        row = conn.execute(
            query("attach"),
            {
                "table": table,
                "pk": pk,
                "text": text,
                "model": model,
                "name": name,
                "row_security": row_security,
                "metadata": metadata,
            },
        ).fetchone()
        assert row is not None
        collection = str(row[0])
        if chunking is not None and chunking.method != "none":
            _set_chunking(conn, collection, chunking)
        conn.commit()
    return collection


def set_chunking(url: str, collection: str, chunking: Chunking) -> dict[str, Any]:
    """Set a collection's chunking (its rows are queued again): {"collection", "chunking"} as stored."""
    with connect(url) as conn:
        result = _set_chunking(conn, collection, chunking)
        conn.commit()
    return result
