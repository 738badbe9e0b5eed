"""Where the database is: VECTORKEEP_DATABASE_URL, or the embedded server."""

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

DATABASE_URL_ENV = "VECTORKEEP_DATABASE_URL"
HOME_ENV = "VECTORKEEP_HOME"

_SQLALCHEMY_PREFIX = "postgresql+psycopg://"
_HIDDEN = "***"

# The password of a URL, as libpq and SQLAlchemy read it: after user: up to the first @.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/\s\"']*:)(?P<password>[^@\s\"']+)@")
# password=... of key=value conninfo or a URL's query: quoted ('it''s', with \' escapes) or up to a blank.
_KEY_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<password>'(?:\\.|[^'\\])*'|[^\s&\"']+)", re.IGNORECASE)


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
        return libpq_url(url)
    from vectorkeep.db import embedded

    return embedded.start(home() / "pgdata").url


def sqlalchemy_url(url: str) -> str:
    """The same URL for SQLAlchemy with the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {redact(url)!r}")


def libpq_url(url: str) -> str:
    """The URL as libpq (psycopg) takes it: SQLAlchemy's postgresql+psycopg:// scheme, which
    SQLAlchemy-minded users configure, made postgresql://; anything else as given."""
    return "postgresql://" + url[len(_SQLALCHEMY_PREFIX) :] if url.startswith(_SQLALCHEMY_PREFIX) else url


def url_with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def redact(text: str, *urls: str | None) -> str:
    """text with every password it holds shown as ***: in URLs (user:***@host), in key=value
    conninfo and URL queries (password=***), and the passwords of `urls` and of
    $VECTORKEEP_DATABASE_URL wherever else they appear: libpq quotes the malformed piece of a
    URL in its errors ('invalid percent-encoded token: "..."'), which may be the password alone."""
    for secret in _passwords((*urls, configured_url())):
        text = text.replace(secret, _HIDDEN)
    text = _URL_PASSWORD.sub(rf"\g<head>{_HIDDEN}@", text)
    return _KEY_PASSWORD.sub(rf"\g<head>{_HIDDEN}", text)


def without_password(url: str) -> str:
    """The URL with no password at all (user@host): libpq then takes it from PGPASSWORD or
    ~/.pgpass, or psql asks for it, where a URL with *** would log in with the wrong one."""
    return _URL_PASSWORD.sub(lambda m: m["head"].removesuffix(":") + "@", url, count=1)


def _passwords(urls: tuple[str | None, ...]) -> list[str]:
    """The passwords the URLs hold, as written and percent-decoded, longest first (so that a
    password containing another is hidden whole)."""
    found = {
        form
        for url in urls
        if url
        for pattern in (_URL_PASSWORD, _KEY_PASSWORD)
        for match in pattern.finditer(url)
        for form in (match["password"], unquote(match["password"]), match["password"].strip("'"))
        if form
    }
    return sorted(found, key=len, reverse=True)
