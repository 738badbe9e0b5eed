"""A throwaway migrated database for one benchmark run."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from vectorkeep.db import embedded, migrate
from vectorkeep.db.settings import url_with_database

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh database on VECTORKEEP_BENCH_ADMIN_URL's server, or on an embedded one started here."""
    admin_url = os.environ.get("VECTORKEEP_BENCH_ADMIN_URL")
    pgdata = ROOT / ".vectorkeep" / f"bench-{os.getpid()}" / "pgdata"
    if not admin_url:
        admin_url = embedded.start(pgdata).url
    name = f"vk_bench_{os.getpid()}"
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = url_with_database(admin_url, name)
        migrate.upgrade(url)
        yield url
    finally:
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        finally:
            # Even when the drop fails (a section died with its writers mid-statement): no stray server.
            if not os.environ.get("VECTORKEEP_BENCH_ADMIN_URL"):
                embedded.destroy(pgdata)
                pgdata.parent.rmdir()


def drop_index(conn: psycopg.Connection, collection: str, model: str) -> None:
    """Drop the HNSW index of a (collection, model version): what pgvector costs, taken out."""
    row = conn.execute(
        "SELECT cm.index_name FROM vk.collection_models cm WHERE cm.collection_id = vk.collection_id(%s) "
        "AND cm.model_id = (vk.model(%s)).id",
        (collection, model),
    ).fetchone()
    assert row is not None
    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier("vk", row[0])))
