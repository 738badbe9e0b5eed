"""Where a worker serves its Prometheus metrics (workers/metrics.py serves them).

Apart from workers/metrics.py, which imports prometheus_client: the command line reads the
default address to build its parser, and imports no metrics library for that.
"""

from dataclasses import dataclass

# This machine only: nothing is reachable from outside unless asked for (--metrics-host 0.0.0.0,
# e.g. in a container whose port is published), though the metrics hold no text and no secret.
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class MetricsAddress:
    """Where a worker serves its metrics: http://host:port/metrics."""

    port: int
    host: str = DEFAULT_HOST
