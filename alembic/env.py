"""Alembic environment: one PostgreSQL database, transactional DDL, no autogenerate.

The schema is written by hand in sql/; revisions apply those files.
"""

import logging.config

from alembic import context
from vectorkeep import sql
from vectorkeep.db import install, migrate, settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return str(
        config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url") or settings.database_url()
    )


def run_migrations_offline() -> None:
    context.configure(url=settings.sqlalchemy_url(_url()), literal_binds=True, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = migrate.engine(_url())
    with engine.connect() as connection:
        context.configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            # Sent as written (no parameters: no placeholder parsing of its '%'), as migrate.apply_sql does.
            driver = connection.connection.driver_connection
            driver.execute(sql.query("citus_roles_on_every_node").encode())
            if config.attributes.get("install_fresh") and not context.get_context().get_current_heads():
                # Head in one pass (db/install.py); stamped head, the revisions then have nothing to do.
                install.install(driver)
                context.get_context().stamp(context.script, "head")
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
