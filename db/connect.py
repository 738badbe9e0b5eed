"""psycopg 3 connections with pgvector's types registered."""

import contextlib
from typing import Any

import psycopg
from pgvector.psycopg import register_vector


def configure(conn: psycopg.Connection) -> None:
    """Register pgvector's types; a no-op until the extension exists (before migrating)."""
    with contextlib.suppress(psycopg.ProgrammingError):
        register_vector(conn)
    if not conn.autocommit:
        # The type lookups opened a transaction; start the caller on a clean slate.
        conn.rollback()


def connect(
    url: str, *, autocommit: bool = False, application_name: str = "vectorkeep", connect_timeout: int | None = None
) -> psycopg.Connection:
    """A connection with pgvector's types; connect_timeout (seconds, libpq's minimum is 2) bounds the wait
    for an unreachable server, which is otherwise the URL's or libpq's (none)."""
    extra: dict[str, Any] = {} if connect_timeout is None else {"connect_timeout": connect_timeout}
    conn = psycopg.connect(url, autocommit=autocommit, application_name=application_name, **extra)
    configure(conn)
    return conn
