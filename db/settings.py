"""Where the database is: VECTORKEEP_DATABASE_URL, or the embedded server."""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DATABASE_URL_ENV = "VECTORKEEP_DATABASE_URL"
HOME_ENV = "VECTORKEEP_HOME"


def home() -> Path:
    """vectorkeep's working folder (the embedded server's data lives under it)."""
    return Path(os.environ.get(HOME_ENV, ".vectorkeep")).expanduser().resolve()


def configured_url() -> str | None:
    """The URL the user configured, if any."""
    return os.environ.get(DATABASE_URL_ENV) or None


def database_url() -> str:
    """The URL to connect to, starting the embedded server when none is configured."""
    url = configured_url()
    if url:
        return url
    from vectorkeep.db import embedded

    return embedded.start(home() / "pgdata").url


def sqlalchemy_url(url: str) -> str:
    """The same URL for SQLAlchemy with the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def url_with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))
