"""The counters of what became of claimed rows, reported alike by a batch (workers/embed.py), a
worker's loop (workers/worker.py) and a service (vectorkeep/app/worker.py). No heavy import: the
command line reads them."""

from dataclasses import dataclass, fields


@dataclass
class RowCounts:
    embedded: int = 0
    emptied: int = 0  # no text: no vector (vk.status counts it)
    failed: int = 0
    deferred: int = 0  # an API encoder was busy or unreachable: back in the queue, attempts kept

    def add(self, other: "RowCounts") -> None:
        for counter in fields(RowCounts):
            setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))


@dataclass
class WorkerStats(RowCounts):
    batches: int = 0

    def add(self, other: RowCounts) -> None:
        """Count a batch's rows, or all of another worker's batches and rows."""
        self.batches += other.batches if isinstance(other, WorkerStats) else 1
        super().add(other)
