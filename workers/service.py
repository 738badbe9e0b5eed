"""A worker process's whole service: the embedding queue and the jobs, side by side.

The queue runs in the calling thread, the job runner in a thread of its own
(a long training must not stall embedding), both stopping on the same signal.
"""

import threading
from dataclasses import dataclass, field

from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.jobs.runner import JobRunner
from vectorkeep.workers.worker import Worker, WorkerSettings, WorkerStats


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
        lease_seconds: float = 30.0,
        encoders: EncoderCache | None = None,
    ) -> None:
        self.url = url
        self.settings = settings or WorkerSettings()
        self.queue, self.jobs = queue, jobs
        self.encoders = encoders or EncoderCache()
        self.worker = Worker(url, self.settings, encoders=self.encoders)
        self.runner = JobRunner(url, lease_seconds=lease_seconds, stop_event=self.worker.stop_event)

    def stop(self) -> None:
        self.worker.stop()

    def run(self, *, until_idle: bool = False) -> ServiceResult:
        """Serve until stop(); with until_idle, until no job and no queued row is left."""
        result = ServiceResult()
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
        drain = Worker(self.url, self.settings, encoders=self.encoders)
        drain.run(until_idle=True)
        result.queue = self.worker.stats
        for name in ("batches", "embedded", "emptied", "failed"):
            setattr(result.queue, name, getattr(result.queue, name) + getattr(drain.stats, name))
        return result
