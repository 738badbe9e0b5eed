"""psycopg 3 connections with pgvector's types registered."""

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.conninfo import conninfo_to_dict

from vectorkeep.db.settings import libpq_url, redact


def configure(conn: psycopg.Connection) -> None:
    """Register pgvector's types; a no-op until the extension exists (before migrating)."""
    with contextlib.suppress(psycopg.ProgrammingError):
        register_vector(conn)
    if not conn.autocommit:
        # The type lookups opened a transaction; start the caller on a clean slate.
        conn.rollback()


@contextlib.contextmanager
def passwords_hidden(url: str) -> Iterator[None]:
    """psycopg's errors about url with its password shown as ***: libpq quotes the conninfo, or the
    piece of it that does not parse, and these errors reach logs and the terminal. The original is
    dropped (not chained), so that no traceback shows it either."""
    try:
        yield
    except psycopg.Error as exc:
        message = str(exc)
        hidden = redact(message, url)
        if hidden == message:
            raise  # keeps the server's diagnostics (SQLSTATE, hint) where there was nothing to hide
        raise type(exc)(hidden) from None


def check_url(url: str) -> None:
    """Raise psycopg.ProgrammingError (the password hidden) at once when url does not parse as a
    conninfo: a worker would otherwise retry a URL that can never connect until it is stopped."""
    with passwords_hidden(url):
        conninfo_to_dict(libpq_url(url))


def connect(
    url: str, *, autocommit: bool = False, application_name: str = "vectorkeep", connect_timeout: int | None = None
) -> psycopg.Connection:
    """A connection with pgvector's types; connect_timeout (seconds, libpq's minimum is 2) bounds the wait
    for an unreachable server, which is otherwise the URL's or libpq's (none). url may be SQLAlchemy's
    postgresql+psycopg:// form too; errors never show its password."""
    extra: dict[str, Any] = {} if connect_timeout is None else {"connect_timeout": connect_timeout}
    with passwords_hidden(url):
        conn = psycopg.connect(libpq_url(url), autocommit=autocommit, application_name=application_name, **extra)
    configure(conn)
    return conn
