"""psycopg 3 connections with pgvector's types registered."""

import contextlib

import psycopg
from pgvector.psycopg import register_vector


def configure(conn: psycopg.Connection) -> None:
    """Register pgvector's types; a no-op until the extension exists (before migrating)."""
    with contextlib.suppress(psycopg.ProgrammingError):
        register_vector(conn)
    if not conn.autocommit:
        # The type lookups opened a transaction; start the caller on a clean slate.
        conn.rollback()


def connect(url: str, *, autocommit: bool = False, application_name: str = "vectorkeep") -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=autocommit, application_name=application_name)
    configure(conn)
    return conn
