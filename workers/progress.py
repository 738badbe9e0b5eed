"""How long work tells how far it is: a job's JobContext.report, passed down to trainers."""

from typing import Protocol


class Report(Protocol):
    def __call__(self, phase: str, done: int, total: int | None = None, unit: str = "rows") -> None:
        """Record progress; raises when the job must stop (cancelled, taken over, worker stopping)."""
