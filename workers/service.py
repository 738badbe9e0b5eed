"""A worker process's whole service: the embedding queue, text queries and the jobs, side by side.

The queue runs in the calling thread; the job runner (a long training must
not stall embedding) and the text-query lane (a backlog must not delay a
text query) in threads of their own; all stop on the same signal. With a
metrics address, Prometheus metrics are served over HTTP while it runs
(workers/metrics.py).
"""

import threading
from dataclasses import dataclass, field

from vectorkeep.workers.counts import WorkerStats
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.jobs.runner import JobRunner
from vectorkeep.workers.metrics import Metrics, MetricsAddress, serving
from vectorkeep.workers.text_queries import TextQueryLane
from vectorkeep.workers.worker import Worker, WorkerSettings


@dataclass
class ServiceResult:
    queue: WorkerStats = field(default_factory=WorkerStats)
    jobs: list[int] = field(default_factory=list)


class Service:
    def __init__(
        self,
        url: str,
        settings: WorkerSettings | None = None,
        *,
        queue: bool = True,
        jobs: bool = True,
        text_queries: bool = True,
        lease_seconds: float = 30.0,
        encoders: EncoderCache | None = None,
        metrics: MetricsAddress | None = None,
    ) -> None:
        self.url = url
        self.settings = settings or WorkerSettings()
        self.queue, self.jobs = queue, jobs
        self.encoders = encoders or EncoderCache()
        self.metrics_address = metrics
        self.metrics = Metrics(url) if metrics is not None else None
        self.worker = Worker(url, self.settings, encoders=self.encoders, metrics=self.metrics)
        self.runner = JobRunner(url, lease_seconds=lease_seconds, stop_event=self.worker.stop_event)
        # Its own encoders: one encoder is never called from two threads. It embeds the application's
        # new rows too, so that they never wait behind the main loop's backfill or bulk batch.
        self.lane = (
            TextQueryLane(url, self.worker.stop_event, live_rows=True, retry=self.settings.retry)
            if queue and text_queries
            else None
        )

    def stop(self) -> None:
        self.worker.stop()

    def run(self, *, until_idle: bool = False) -> ServiceResult:
        """Serve until stop(); with until_idle, until no job and no queued row is left
        (text queries are served only by a service that runs until stopped). Metrics, when asked
        for, are served from the start until it returns."""
        with serving(self.metrics, self.metrics_address):
            return self._run_lanes(until_idle)

    def _run_lanes(self, until_idle: bool) -> ServiceResult:
        result = ServiceResult()
        if self.lane is not None and not until_idle:
            lane = threading.Thread(target=self.lane.run, name="text-query lane", daemon=True)
            lane.start()
            try:
                return self._run(result, until_idle)
            finally:
                self.stop()
                lane.join()
        return self._run(result, until_idle)

    def _run(self, result: ServiceResult, until_idle: bool) -> ServiceResult:
        if not self.jobs:
            result.queue = self.worker.run(until_idle=until_idle)
            return result
        if not self.queue:
            result.jobs = self.runner.run(until_idle=until_idle)
            return result
        jobs = threading.Thread(target=lambda: result.jobs.extend(self.runner.run(until_idle=until_idle)))
        if not until_idle:
            jobs.start()
            result.queue = self.worker.run()
            jobs.join()
            return result
        # Jobs wait on the queue (a re-embed ends when its rows are embedded), so
        # the queue is served until the jobs are done, then drained.
        queue = threading.Thread(target=self.worker.run, daemon=True)
        queue.start()
        jobs.start()
        jobs.join()
        self.worker.stop()
        queue.join()
        drain = Worker(self.url, self.settings, encoders=self.encoders, metrics=self.metrics)
        drain.run(until_idle=True)
        result.queue = self.worker.stats
        result.queue.add(drain.stats)
        return result
