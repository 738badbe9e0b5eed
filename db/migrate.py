"""Schema migrations through alembic, from the repository or an installed package."""

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

import vectorkeep
from alembic import command, op
from vectorkeep import sql
from vectorkeep.db import settings


def apply_sql(relative_path: str) -> None:
    """Run one file of sql/ inside the current migration's transaction.

    The text goes to psycopg's own connection with no parameters, so it is
    sent as written (no placeholder parsing of '%' or ':name'): the files stay
    plain SQL a DBA can run with psql -f.
    """
    driver = op.get_bind().connection.driver_connection
    assert driver is not None
    driver.execute(sql.read(relative_path).encode())


def reapply_idempotent(through: str) -> None:
    """Re-apply, in order, the idempotent files of every revision up to `through`.

    A downgrade uses this to bring back the function bodies a later revision
    replaced, without a second copy of them in its down.sql.
    """
    for path in sql.reapplicable(through):
        apply_sql(path)


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


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    engine = create_engine(settings.sqlalchemy_url(url or settings.database_url()), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(config("postgresql://unused")).get_current_head()
