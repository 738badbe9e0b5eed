"""Run a worker's service: the embedding queue and the jobs, until stopped or idle.

The worker's modules (numpy, the encoders, prometheus_client) are imported when a worker is set up or
served, not with this module: the command line imports it to build its parser."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from vectorkeep.workers import device as devices
from vectorkeep.workers.counts import WorkerStats
from vectorkeep.workers.metrics_address import DEFAULT_HOST as DEFAULT_METRICS_HOST

if TYPE_CHECKING:
    from vectorkeep.workers.encoder_cache import EncoderCache
    from vectorkeep.workers.worker import WorkerSettings

__all__ = [
    "DEFAULT_METRICS_HOST",
    "DEVICES",
    "EncoderCache",
    "ServeReport",
    "WorkerSettings",
    "serve",
    "use_device",
    "worker_settings",
]


def __getattr__(name: str) -> Any:
    # EncoderCache and WorkerSettings, re-exported when first read (their modules import numpy).
    if name == "EncoderCache":
        from vectorkeep.workers.encoder_cache import EncoderCache

        return EncoderCache
    if name == "WorkerSettings":
        from vectorkeep.workers.worker import WorkerSettings

        return WorkerSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# What `use_device` takes (VECTORKEEP_DEVICE's values).
DEVICES = devices.CHOICES

log = logging.getLogger(__name__)

# Called with the service's stop function before it runs (the CLI ties it to SIGINT/SIGTERM).
OnStart = Callable[[Callable[[], None]], None]


@dataclass
class ServeReport(WorkerStats):
    """What a service did: queue batches and rows (workers/worker.py's counters), and the jobs it ran."""

    jobs: list[int] = field(default_factory=list)


def worker_settings(
    *,
    batch_size: int = 64,
    poll_interval: float = 1.0,
    max_attempts: int = 5,
    backoff: float = 2.0,
    overlap: bool = True,
) -> WorkerSettings:
    """A worker's settings: rows per transaction, the poll interval, retries with doubling backoff,
    and whether a batch is encoded while the last one is written (overlap)."""
    from vectorkeep.workers.embed import RetryPolicy
    from vectorkeep.workers.worker import WorkerSettings

    return WorkerSettings(
        batch_size=batch_size,
        poll_interval=poll_interval,
        retry=RetryPolicy(max_attempts=max_attempts, backoff_seconds=backoff),
        overlap=overlap,
    )


def use_device(device: str) -> None:
    """Run this process's encoders on `device` (auto, cpu, cuda, mps), as VECTORKEEP_DEVICE does;
    raises ValueError at once when this machine has no such device."""
    devices.pick_device(device)
    os.environ[devices.DEVICE_ENV] = device


def serve(
    url: str,
    settings: WorkerSettings | None = None,
    *,
    queue: bool = True,
    jobs: bool = True,
    text_queries: bool = True,
    lease_seconds: float = 30.0,
    until_idle: bool = False,
    encoders: EncoderCache | None = None,
    on_start: OnStart | None = None,
    metrics_port: int | None = None,
    metrics_host: str = DEFAULT_METRICS_HOST,
) -> ServeReport:
    """Embed queued rows and run jobs until stopped (or, with until_idle, until nothing is left to do).

    Stopping finishes the batch in hand and hands running jobs back with their progress.
    With text_queries, an embedding worker also answers text queries (its text-query lane).
    With a metrics_port (0 or None: none), Prometheus metrics are served at
    http://metrics_host:metrics_port/metrics until the service stops.
    A URL that does not parse raises psycopg.ProgrammingError at once; an unreachable server is
    retried until stopped (it may be starting too).
    """
    from vectorkeep.db.connect import check_url
    from vectorkeep.workers.metrics_address import MetricsAddress
    from vectorkeep.workers.service import Service

    check_url(url)
    service = Service(
        url,
        settings,
        queue=queue,
        jobs=jobs,
        text_queries=text_queries,
        lease_seconds=lease_seconds,
        encoders=encoders,
        metrics=MetricsAddress(metrics_port, metrics_host) if metrics_port else None,
    )
    if on_start is not None:
        on_start(service.stop)
    result = service.run(until_idle=until_idle)
    log.info("worker stopped: %s, jobs run: %s", result.queue, result.jobs)
    return ServeReport(**asdict(result.queue), jobs=result.jobs)
