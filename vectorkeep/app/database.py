"""The database itself: its URL, the embedded server, the schema's revision, what migrating it needs.

Only db.settings is imported with this module (the command line imports it to parse its arguments);
migrations (alembic, SQLAlchemy), the preflight and the embedded server are imported when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from vectorkeep.db import settings

if TYPE_CHECKING:
    from vectorkeep.db import distribute as citus

    # What `migrate --check` and `doctor` return, for the CLI (re-exported: it imports only this layer).
    from vectorkeep.db.preflight import Check as Check
    from vectorkeep.db.preflight import Report as Report


def __getattr__(name: str) -> Any:
    # Check and Report, re-exported from db.preflight (which imports alembic) when first read.
    if name in ("Check", "Report"):
        from vectorkeep.db import preflight

        return getattr(preflight, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DATABASE_URL_ENV = settings.DATABASE_URL_ENV

# The preflight gives up on connecting, and on each statement, after about this long: it reads the catalogue
# and tries one loopback connection, which a wrong host could otherwise leave hanging.
PREFLIGHT_TIMEOUT_SECONDS = 20.0


class Stopped(NamedTuple):
    stopped: bool  # False: no embedded server was running there
    pgdata: Path


def database_url(explicit: str | None = None) -> str:
    """The URL given, else $VECTORKEEP_DATABASE_URL, else the embedded server's (started if needed);
    SQLAlchemy's postgresql+psycopg:// form is taken too (and returned as postgresql://)."""
    return settings.libpq_url(explicit) if explicit else settings.database_url()


def redact(text: str, *urls: str | None) -> str:
    """text with every password in it shown as *** (those of urls and of $VECTORKEEP_DATABASE_URL
    included): for whatever may print or log a URL or an error about one."""
    return settings.redact(text, *urls)


def printable_url(url: str) -> str:
    """The URL to print for psql: without its password, which psql then takes from PGPASSWORD or
    ~/.pgpass or asks for (a terminal's scrollback and a CI log keep what is printed)."""
    return settings.without_password(url)


def psql_command(url: str) -> str | None:
    """The psql command line for the embedded server (None when the user configured a server)."""
    from vectorkeep.db import embedded

    if settings.configured_url():
        return None
    return f'{embedded.psql_path()} "{url}"'


def stop_embedded() -> Stopped:
    """Stop the embedded server under VECTORKEEP_HOME, if one runs."""
    from vectorkeep.db import embedded

    pgdata = settings.home() / "pgdata"
    return Stopped(embedded.stop(pgdata), pgdata)


def migrate_to(url: str, revision: str = "head", *, downgrade: bool = False) -> str | None:
    """Upgrade (or downgrade) the schema to a revision; the revision the database is at after."""
    from vectorkeep.db import migrate

    if downgrade:
        migrate.downgrade(url, revision)
    else:
        migrate.upgrade(url, revision)
    return migrate.current_revision(url)


def check_migrate(url: str, revision: str = "head") -> Report:
    """What an upgrade to `revision` needs of the server and of the role of `url`, checked as that role: each
    check ok, warn or fail, with what to do. Changes nothing; `passed` when migrate may run."""
    from vectorkeep.db import preflight, probes

    with probes.probe_connection(
        url, application_name=preflight.APPLICATION_NAME, timeout=PREFLIGHT_TIMEOUT_SECONDS
    ) as conn:
        return preflight.run(conn, revision)


def distribute(url: str, shards: int | None = None, embeddings_by: str = "collection_id") -> list[citus.Placement]:
    """Distribute vk over the Citus cluster of this coordinator (vk.distribute); each table's placement."""
    from vectorkeep.db import distribute as citus

    return citus.distribute(url, shards, embeddings_by)
