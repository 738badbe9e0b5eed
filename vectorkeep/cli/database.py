"""`down`, `url`, `migrate`, `doctor`, `distribute`: the database itself."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from vectorkeep.app import database
from vectorkeep.cli.output import emit
from vectorkeep.cli.parsing import Commands, url

# The column the found text starts in, and the indent of what to do and its SQL under it.
_NAME_WIDTH = 17


def cmd_down(args: argparse.Namespace) -> int:
    stopped, pgdata = database.stop_embedded()
    print("stopped the embedded database" if stopped else f"no embedded database runs in {pgdata}")
    return 0


def cmd_url(args: argparse.Namespace) -> int:
    print(database.printable_url(url(args)))
    return 0


def print_checks(checks: list[database.Check], out: TextIO) -> None:
    """One line a check; under a warn or fail, what to do and the statements to run."""
    indent = " " * (6 + _NAME_WIDTH)
    for c in checks:
        print(f"{c.status:<5} {c.name:<{_NAME_WIDTH}}{c.found}", file=out)
        if c.fix:
            print(f"{indent}{c.fix}", file=out)
        for statement in c.sql:
            print(f"{indent}  {statement}", file=out)


def print_report(report: database.Report, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
        return
    pgvector = (
        f"pgvector {report.pgvector_version}"
        if report.pgvector_version
        else f"pgvector {report.pgvector_available or 'unavailable'} (not installed)"
    )
    print(
        f"role {report.role}, database {report.database}: PostgreSQL {report.server_version}, {pgvector}; "
        f"revision {report.revision or 'none'}, migrate goes to {report.target}"
    )
    print_checks(report.checks, sys.stdout)
    warnings = len(report.warnings)
    if report.passed and warnings:
        print(f"migrate would succeed, with {warnings} warning{'s' if warnings > 1 else ''}")
    elif report.passed:
        print("migrate would succeed")
    else:
        print(f"migrate would fail: {', '.join(c.name for c in report.failures)} (see above)")


def cmd_doctor(args: argparse.Namespace) -> int:
    """Exit 0 when migrate may run (warnings allowed), 1 when a check failed."""
    report = database.check_migrate(url(args), args.revision)
    print_report(report, as_json=args.json)
    return 0 if report.passed else 1


def cmd_migrate(args: argparse.Namespace) -> int:
    if args.downgrade:
        if args.check:
            raise SystemExit("error: --check checks an upgrade, not a --downgrade")
        revision = database.migrate_to(url(args), args.downgrade, downgrade=True)
    else:
        if args.check:
            return cmd_doctor(args)
        if not args.skip_checks:
            report = database.check_migrate(url(args), args.revision)
            if not report.passed:
                # A migration that fails rolls back, but says only what its first refused statement was.
                print("error: migrate stopped before changing anything; what it needs:", file=sys.stderr)
                print_checks(report.failures, sys.stderr)
                print(
                    "(`vectorkeep migrate --check` shows every check; --skip-checks migrates anyway)", file=sys.stderr
                )
                return 1
            for c in report.warnings:
                print(f"warning: {c.name}: {c.found} (`vectorkeep migrate --check` says what to do)", file=sys.stderr)
        revision = database.migrate_to(url(args), args.revision)
    if args.json:
        print(json.dumps({"revision": revision}))
    else:
        print(f"database at revision {revision}")
    return 0


def cmd_distribute(args: argparse.Namespace) -> int:
    placements = database.distribute(url(args), args.shards, args.embeddings_by)
    emit([vars(p) for p in placements], as_json=args.json)
    return 0


def register(commands: Commands) -> None:
    commands.add("down", cmd_down, "Stop the embedded database.", json_flag=False)
    commands.add(
        "url",
        cmd_url,
        "Print the database URL (starting the embedded server if needed); a password in it is shown as ***.",
        json_flag=False,
    )
    p = commands.add(
        "migrate",
        cmd_migrate,
        "Apply alembic migrations (upgrade to head by default), once the checks of --check pass.",
    )
    p.add_argument("--revision", default="head")
    p.add_argument("--downgrade", metavar="REVISION", help="downgrade to this revision (e.g. base)")
    p.add_argument(
        "--check",
        action="store_true",
        help="change nothing: check what migrating needs of the server and of this role, say what to do or ask "
        "an administrator for; exit 0 when migrate may run (warnings allowed), 1 when not (as `vectorkeep doctor`)",
    )
    p.add_argument(
        "--skip-checks",
        action="store_true",
        help="migrate without checking first (for experts: a migration that fails rolls back, saying only what "
        "its first refused statement was)",
    )
    p = commands.add(
        "doctor",
        cmd_doctor,
        "Check what `vectorkeep migrate` needs of the server and of this role (server and pgvector versions, "
        "dblink and the loopback of text queries, the role's rights), changing nothing; say what to do or ask an "
        "administrator for; exit 0 when migrate may run (warnings allowed), 1 when not.",
    )
    p.add_argument("--revision", default="head", help="the revision an upgrade would go to (default head)")
    p = commands.add(
        "distribute",
        cmd_distribute,
        "On a Citus coordinator with worker nodes: make vk's small tables reference tables, vk.embeddings and "
        "vk.queue distributed by collection (co-located), attached tables distributed by their key, and every "
        "node ready to capture writes (vk.distribute(); idempotent); print each table and how it is placed.",
    )
    p.add_argument("--shards", type=int, help="shards per distributed table (default: Citus's citus.shard_count)")
    p.add_argument(
        "--embeddings-by",
        choices=("collection_id", "pk"),
        default="collection_id",
        help="collection_id (default): a collection's vectors on one shard, a search reads one HNSW index; pk: "
        "spread over every shard, a search asks each and the coordinator merges (docs/scale-out.md)",
    )
