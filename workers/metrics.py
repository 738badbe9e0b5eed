"""A worker's Prometheus metrics, served over HTTP (`vectorkeep worker --metrics-port N`).

Two kinds of numbers, in one CollectorRegistry per worker (never the global one,
so that one process may run several workers, as the tests do):

- what this worker did, updated from the batch loop: rows embedded and rows
  failed (per model version: failed by the encoder, and failed inside the
  claim, whose text or metadata expression raised), batches, seconds per
  batch and seconds encoding.
  The worker binds its Metrics to its thread's context (`recording`); the batch
  code times its encoding (`encoding`) and takes a `BatchMetrics` when it
  claims, which keeps that worker's Metrics, so the counts land there even when
  another thread commits the batch. With none bound (a worker without metrics,
  a job that embeds), nothing is recorded;
- what the database holds, read when Prometheus scrapes (`DatabaseCollector`):
  the queue and its dead rows per collection and model version, the oldest
  rows' ages, running jobs' progress, and whether the database answered at all
  (`vectorkeep_database_up`). A scrape whose queries fail says 0 there and
  nothing else; it never stops the worker or the HTTP server.

Labels: `collection`, `model` (`name@version`), `job_id` and `kind` (not `job`,
which Prometheus sets on every series to the scrape job's name).
"""

import contextlib
import contextvars
import logging
import time
from collections.abc import Iterable, Iterator, Mapping

import psycopg
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from vectorkeep.db import probes
from vectorkeep.workers.metrics_address import DEFAULT_HOST as DEFAULT_HOST
from vectorkeep.workers.metrics_address import MetricsAddress as MetricsAddress

log = logging.getLogger(__name__)

# From a no-op encoder's few milliseconds to a large model's minutes on a CPU.
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class DatabaseCollector(Collector):
    """The queue, dead rows and running jobs, read from the database at each scrape
    (one connection, two statements: db/probes.py)."""

    def __init__(self, url: str, *, timeout: float = probes.PROBE_TIMEOUT_SECONDS) -> None:
        self.url = url
        self.timeout = timeout

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # The names only, so that registering the collector does not scrape the database.
        return [self._up(), *self._families().values()]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        up = self._up()
        try:
            with probes.probe_connection(self.url, application_name="vectorkeep metrics", timeout=self.timeout) as conn:
                queue = probes.queue_state(conn)
                jobs = probes.running_jobs(conn)
        except psycopg.Error as exc:
            log.warning("metrics: the database did not answer the scrape (%s)", str(exc).strip())
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        f = self._families()
        for q in queue:
            labels = [q.collection, q.model]
            f["queued"].add_metric(labels, q.queued)
            f["dead"].add_metric(labels, q.dead)
            f["oldest"].add_metric(labels, q.oldest_seconds or 0.0)
            f["oldest_ready"].add_metric(labels, q.oldest_ready_seconds or 0.0)
        for j in jobs:
            labels = [str(j.id), j.kind]
            if j.done is not None:
                f["job_done"].add_metric(labels, j.done)
            if j.total is not None:
                f["job_total"].add_metric(labels, j.total)
        return [up, *f.values()]

    @staticmethod
    def _up() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "vectorkeep_database_up", "1 when the database answered this scrape's queries, 0 when it did not"
        )

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        pair = ["collection", "model"]
        job = ["job_id", "kind"]
        return {
            "queued": GaugeMetricFamily(
                "vectorkeep_queue_depth",
                "Queue rows waiting for a vector (not dead), per collection and model",
                None,
                pair,
            ),
            "dead": GaugeMetricFamily(
                "vectorkeep_queue_dead", "Dead queue rows (out of attempts; see vk.status, vk.retry_dead)", None, pair
            ),
            "oldest": GaugeMetricFamily(
                "vectorkeep_queue_oldest_age_seconds",
                "Age of the oldest queued (not dead) row; 0 when none",
                None,
                pair,
            ),
            "oldest_ready": GaugeMetricFamily(
                "vectorkeep_queue_oldest_ready_age_seconds",
                "Age of the oldest row a worker may claim now (not dead, not waiting for a retry); 0 when none",
                None,
                pair,
            ),
            "job_done": GaugeMetricFamily(
                "vectorkeep_job_progress_done", "Units a running job has done (its progress, as last saved)", None, job
            ),
            "job_total": GaugeMetricFamily(
                "vectorkeep_job_progress_total", "Units a running job has in all, where it knows", None, job
            ),
        }


class Metrics:
    """One worker's metrics in a registry of its own; with a URL, also what the database holds."""

    def __init__(self, url: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.rows_embedded = Counter(
            "vectorkeep_rows_embedded", "Queue rows this worker embedded and wrote", ["model"], registry=r
        )
        self.rows_failed = Counter(
            "vectorkeep_rows_failed",
            "Queue rows this worker could not embed, its claim's included (each failed attempt; retried until dead)",
            ["model"],
            registry=r,
        )
        self.batches = Counter("vectorkeep_batches", "Batches this worker claimed and committed", registry=r)
        self.batch_seconds = Histogram(
            "vectorkeep_batch_seconds",
            "Seconds per batch: claim, encode, write, commit",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.encode_seconds = Histogram(
            "vectorkeep_encode_seconds",
            "Seconds encoding one batch's texts, per model version",
            ["model"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.rows_deferred = Counter(
            "vectorkeep_rows_deferred",
            "Queue rows put back because their API encoder was throttled, failing or unreachable (attempts kept)",
            ["model"],
            registry=r,
        )
        # Encoders behind an API (kinds openai, voyage, ollama): what vk.api_usage keeps, as this worker used it.
        self.api = {
            name: Counter(f"vectorkeep_api_{name}", what, ["model"], registry=r)
            for name, what in (
                ("requests", "Requests an API encoder answered with vectors"),
                ("inputs", "Texts an API encoder embedded"),
                ("tokens", "Tokens an API encoder's provider counted"),
                ("retries", "Requests sent again after a 429, a 5xx, a timeout or a malformed answer"),
                ("throttled_seconds", "Seconds waited for a 429's Retry-After, a back-off or the per-minute budgets"),
                ("failures", "Requests an API encoder's provider answered with an error, or not at all"),
            )
        }
        if url is not None:
            r.register(DatabaseCollector(url))


_current: contextvars.ContextVar[Metrics | None] = contextvars.ContextVar("vectorkeep_metrics", default=None)


@contextlib.contextmanager
def recording(metrics: Metrics | None) -> Iterator[None]:
    """Within the block, this module's functions record into `metrics` (nothing, when None)."""
    token = _current.set(metrics)
    try:
        yield
    finally:
        _current.reset(token)


def recording_now() -> bool:
    """Whether this thread's batches record into a worker's metrics (and what only metrics need is worth reading)."""
    return _current.get() is not None


class BatchMetrics:
    """What one batch reports: made when the batch is claimed, in the thread that claims it (whose
    worker's metrics it keeps), and told its rows once it commits, in whichever thread commits."""

    def __init__(self) -> None:
        self.metrics = _current.get()
        self.started = time.monotonic()

    def committed(self, rows: dict[str, tuple[int, int]]) -> None:
        """The batch committed: per model version (name@version), rows (embedded, failed); none: the
        claim found no row (a poll), which is no batch."""
        if self.metrics is None or not rows:
            return
        self.metrics.batches.inc()
        self.metrics.batch_seconds.observe(time.monotonic() - self.started)
        for model, (embedded, failed) in rows.items():
            if embedded:
                self.metrics.rows_embedded.labels(model).inc(embedded)
            if failed:
                self.metrics.rows_failed.labels(model).inc(failed)

    def api(self, model: str, usage: Mapping[str, float], deferred: int) -> None:
        """A committed batch's use of an API encoder (workers.encoders.usage.Usage.as_params()) and the rows
        it deferred, for the version `model`."""
        if self.metrics is None:
            return
        if deferred:
            self.metrics.rows_deferred.labels(model).inc(deferred)
        for name, value in usage.items():
            if value and name in self.metrics.api:
                self.metrics.api[name].labels(model).inc(value)


@contextlib.contextmanager
def encoding(model: str) -> Iterator[None]:
    """Time the block as encoding with the version `model` (name@version)."""
    metrics = _current.get()
    start = time.perf_counter()
    try:
        yield
    finally:
        if metrics is not None:
            metrics.encode_seconds.labels(model).observe(time.perf_counter() - start)


class MetricsServer:
    """Serves a registry at http://host:port/metrics, in a thread, until stop()."""

    def __init__(self, registry: CollectorRegistry, address: MetricsAddress) -> None:
        try:
            self._server, self._thread = start_http_server(address.port, address.host, registry)
        except OSError as exc:
            raise OSError(f"cannot serve metrics on {address.host}:{address.port}: {exc.strerror or exc}") from exc
        self.host = address.host
        log.info("serving metrics on http://%s:%d/metrics", address.host, self.port)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def serving(metrics: Metrics | None, address: MetricsAddress | None) -> Iterator[MetricsServer | None]:
    """Serve `metrics` at `address` for the block (nothing when either is None); stops with the block."""
    if metrics is None or address is None:
        yield None
        return
    server = MetricsServer(metrics.registry, address)
    try:
        yield server
    finally:
        server.stop()
