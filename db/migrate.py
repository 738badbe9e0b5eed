"""Schema migrations through alembic, from the repository or an installed package."""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, pool
from sqlalchemy.exc import DBAPIError

import vectorkeep
from alembic import command, op
from vectorkeep import sql
from vectorkeep.db import catalogue, definitions, kinds, settings
from vectorkeep.db.catalogue import Release
from vectorkeep.db.connect import connect


def _driver() -> psycopg.Connection:
    driver = op.get_bind().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


def apply_sql(relative_path: str) -> None:
    """Run one file of sql/ inside the current migration's transaction (definitions.run_file)."""
    definitions.run_file(_driver(), relative_path)


def apply_definitions(revision: str, skip: tuple[str, ...] = ()) -> None:
    """The definitions that `revision` has: the files of sql/definitions/ for the
    head revision, else the catalogue recorded for that release.

    skip: objects of the release's catalogue that the revision's own run-once
    file creates (see 0001_core).
    """
    conn = _driver()
    with catalogue.names_printed_for(conn, catalogue.vector_schema(conn)):
        if revision == head_revision():
            definitions.apply_head(conn)
        else:
            recorded = release(revision)
            definitions.restore(conn, recorded, skip)
            if "index vk.model_kinds_pkey" in recorded.objects:
                kinds.sync(conn)  # the release's SQL reads roles from vk.model_kinds


def restore_definitions(revision: str) -> None:
    """A downgrade's last step: the definitions of the release below, as recorded."""
    conn = _driver()
    with catalogue.names_printed_for(conn, catalogue.vector_schema(conn)):
        definitions.restore(conn, release(revision))


def release(revision: str) -> Release:
    return Release.loads(sql.read(sql.release_file(revision)))


def script_location() -> Path:
    """alembic/ of the checkout (editable install), or vectorkeep/migrations of a wheel."""
    package = Path(vectorkeep.__file__).parent
    for candidate in (package / "migrations", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(f"vectorkeep's alembic scripts are missing beside {package}")


def config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.attributes["url"] = url or settings.database_url()
    cfg.attributes["configure_logging"] = False
    return cfg


def engine(url: str) -> Engine:
    """A SQLAlchemy engine on db/connect.py's connections: migrations take every URL the other
    commands take, read it the same way, and their errors never show its password."""
    return create_engine(
        "postgresql+psycopg://",
        creator=lambda: connect(url, application_name="vectorkeep migrate"),
        poolclass=pool.NullPool,
    )


@contextlib.contextmanager
def _psycopg_errors() -> Iterator[None]:
    """psycopg's error itself rather than SQLAlchemy's wrapper of it: callers (the CLI prints its
    message and hint) deal in psycopg's errors; SQLAlchemy is this module's detail."""
    try:
        yield
    except DBAPIError as exc:
        if isinstance(exc.orig, psycopg.Error):
            raise exc.orig from None
        raise


def upgrade(url: str | None = None, revision: str = "head", *, replay: bool = False) -> None:
    """Upgrade to `revision`. A database without vectorkeep upgraded to head gets head's schema in one
    pass (db/install.py), unless `replay`: then every revision is applied in turn, as an upgrade to an
    older revision, and the alembic command line, always do (`vectorkeep schema record` records a
    release that way: the one pass is built from what the replay gives)."""
    cfg = config(url)
    cfg.attributes["install_fresh"] = revision == "head" and not replay
    with _psycopg_errors():
        command.upgrade(cfg, revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    with _psycopg_errors():
        command.downgrade(config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    db = engine(url or settings.database_url())
    try:
        with _psycopg_errors(), db.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        db.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(config("postgresql://unused")).get_current_head()


def revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(config("postgresql://unused"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]
