"""`worker`: embed queued rows and run jobs until stopped (or idle)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
from collections.abc import Callable

from vectorkeep.app import worker
from vectorkeep.cli.output import emit
from vectorkeep.cli.parsing import Commands, url, worker_options

log = logging.getLogger("vectorkeep")


def settings_of(args: argparse.Namespace) -> worker.WorkerSettings:
    return worker.worker_settings(
        batch_size=args.batch_size,
        poll_interval=args.poll_interval,
        max_attempts=args.max_attempts,
        backoff=args.backoff,
        overlap=not args.no_overlap,
    )


def stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGINT/SIGTERM: finish the batch in hand, then stop."""

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s: finishing the current batch", signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def cmd_worker(args: argparse.Namespace) -> int:
    if args.device is not None:
        worker.use_device(args.device)
    report = worker.serve(
        url(args),
        settings_of(args),
        queue=not args.jobs_only,
        jobs=not args.no_jobs,
        text_queries=not args.no_text_queries,
        lease_seconds=args.lease,
        until_idle=args.until_idle,
        on_start=stop_on_signals,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )
    if args.json:
        emit([dataclasses.asdict(report)], as_json=True)
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "worker",
        cmd_worker,
        "Embed queued rows (LISTEN, claim, encode, write) and run jobs (train, reembed); Ctrl-C or SIGTERM "
        "finishes the batch, hands running jobs back, and stops.",
    )
    p.add_argument("--until-idle", action="store_true", help="exit when no job and no queued row is left")
    p.add_argument("--jobs-only", action="store_true", help="run jobs only, no embedding queue")
    p.add_argument("--no-jobs", action="store_true", help="embed queued rows only, run no job")
    p.add_argument(
        "--no-text-queries",
        action="store_true",
        help="answer no text queries (vk.embed, vk.search with a text); by default an embedding worker does",
    )
    p.add_argument(
        "--lease", type=float, default=30.0, help="seconds a job stays ours without a heartbeat (default 30)"
    )
    p.add_argument(
        "--device",
        choices=worker.DEVICES,
        help="where encoders run (default: $VECTORKEEP_DEVICE, else auto: cuda, then mps, then cpu)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics while the worker runs (default 0: off)",
    )
    p.add_argument(
        "--metrics-host",
        default=worker.DEFAULT_METRICS_HOST,
        metavar="HOST",
        help=f"the address metrics are served on (default {worker.DEFAULT_METRICS_HOST}: this machine only; "
        "0.0.0.0: every interface, e.g. in a container whose port is published)",
    )
    worker_options(p)
