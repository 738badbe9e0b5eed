"""db/tables.py mirrors the migrated schema, and works for SQLAlchemy users."""

import psycopg
from sqlalchemy import create_engine, func, inspect, pool, select

from helpers import drain
from vectorkeep.db import tables
from vectorkeep.db.settings import sqlalchemy_url
from vectorkeep.workers.encoder_cache import EncoderCache


def test_metadata_matches_the_database(db_url: str) -> None:
    engine = create_engine(sqlalchemy_url(db_url), poolclass=pool.NullPool)
    try:
        inspector = inspect(engine)
        in_db = set(inspector.get_table_names(schema="vk"))
        assert in_db == {t.name for t in tables.metadata.sorted_tables}
        for table in tables.metadata.sorted_tables:
            columns = {c["name"]: c for c in inspector.get_columns(table.name, schema="vk")}
            assert list(columns) == [c.name for c in table.columns], table.name
            for column in table.columns:
                assert columns[column.name]["nullable"] == column.nullable, f"{table.name}.{column.name}"
            pk = inspector.get_pk_constraint(table.name, schema="vk")["constrained_columns"]
            assert pk == [c.name for c in table.primary_key.columns], table.name
    finally:
        engine.dispose()


def test_sqlalchemy_insert_is_embedded(conn: psycopg.Connection, db_url: str, encoders: EncoderCache) -> None:
    engine = create_engine(sqlalchemy_url(db_url), poolclass=pool.NullPool)
    try:
        with engine.begin() as sa:
            sa.execute(tables.documents.insert().values(body="inserted through SQLAlchemy", metadata={}))
        drain(db_url, encoders)
        with engine.connect() as sa:
            n = sa.execute(select(func.count()).select_from(tables.embeddings)).scalar_one()
            body = sa.execute(select(tables.embeddings.c.body)).scalar_one()
    finally:
        engine.dispose()
    assert (n, body) == (1, "inserted through SQLAlchemy")
