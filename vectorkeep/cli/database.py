"""`down`, `url`, `migrate`: the database itself."""

import argparse

from vectorkeep.app import database
from vectorkeep.cli.parsing import Commands, url


def cmd_down(args: argparse.Namespace) -> int:
    stopped, pgdata = database.stop_embedded()
    print("stopped the embedded database" if stopped else f"no embedded database runs in {pgdata}")
    return 0


def cmd_url(args: argparse.Namespace) -> int:
    print(database.printable_url(url(args)))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    if args.downgrade:
        revision = database.migrate_to(url(args), args.downgrade, downgrade=True)
    else:
        revision = database.migrate_to(url(args), args.revision)
    print(f"database at revision {revision}")
    return 0


def register(commands: Commands) -> None:
    commands.add("down", cmd_down, "Stop the embedded database.", json_flag=False)
    commands.add(
        "url",
        cmd_url,
        "Print the database URL (starting the embedded server if needed); a password in it is shown as ***.",
        json_flag=False,
    )
    p = commands.add("migrate", cmd_migrate, "Apply alembic migrations (upgrade to head by default).", json_flag=False)
    p.add_argument("--revision", default="head")
    p.add_argument("--downgrade", metavar="REVISION", help="downgrade to this revision (e.g. base)")
