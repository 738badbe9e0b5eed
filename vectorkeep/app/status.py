"""Embedding progress per collection and model (vk.status)."""

from typing import Any

from psycopg.rows import dict_row

from vectorkeep.db.connect import connect
from vectorkeep.sql import query


def status(url: str) -> list[dict[str, Any]]:
    """Rows, embedded, chunks, pending, failed, dead, empty and stale per collection and model."""
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query("status")).fetchall()
