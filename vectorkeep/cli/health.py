"""`health`: exit 0 when the database can serve workers now, 1 when not (for orchestrators' probes)."""

import argparse
import json

from vectorkeep.app import health
from vectorkeep.cli.parsing import Commands, url


def cmd_health(args: argparse.Namespace) -> int:
    result = health.check(
        url(args),
        max_queue_age=args.max_queue_age,
        allow_dead=args.allow_dead,
        max_idle_queue=args.max_idle_queue,
        timeout=args.timeout,
    )
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        width = max(len(c.check) for c in result.checks)
        for c in result.checks:
            print(f"{c.status:<7} {c.check:<{width}}  {c.detail}")
    return 0 if result.healthy else 1


def register(commands: Commands) -> None:
    p = commands.add(
        "health",
        cmd_health,
        "Check that the database answers, its schema is the one this vectorkeep expects (revision and worker "
        "contract), no queue row is dead, no ready row has waited too long, and ready rows have a worker to "
        "claim them; one line a check (--json for scripts); exit 0 when healthy, 1 when not.",
    )
    p.add_argument(
        "--max-queue-age",
        type=float,
        metavar="SECONDS",
        help="fail when the oldest row ready to claim has waited longer than this (default: report its age only)",
    )
    p.add_argument("--allow-dead", action="store_true", help="dead queue rows are reported, not a failure")
    p.add_argument(
        "--max-idle-queue",
        type=float,
        default=health.MAX_IDLE_QUEUE_SECONDS,
        metavar="SECONDS",
        help="fail when a row has been ready to claim for longer than this and no worker is connected "
        f"(default {health.MAX_IDLE_QUEUE_SECONDS:g})",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="give up on connecting and on each query after about this long (default 5)",
    )
