"""Progress bars on stderr (tqdm) for long work: embedding a backlog, waiting for jobs.

Each is a callback an application-layer operation calls as the work goes on,
and a context manager that closes its bar.
"""

import sys
from types import TracebackType
from typing import Any, Self

from tqdm import tqdm


class _Bar:
    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: tqdm | None = None

    def _open(self, desc: str, total: int | None = None) -> tqdm:
        self.close()
        self.bar = tqdm(total=total, desc=desc, unit="row", file=sys.stderr, disable=self.quiet or None)
        return self.bar

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class RowsBar(_Bar):
    """Rows done out of those pending at the start (`vectorkeep up`)."""

    def __call__(self, done: int, total: int) -> None:
        bar = self.bar or self._open("embedding", total)
        bar.n = done
        bar.refresh()


class JobBars(_Bar):
    """One bar per job waited for (a train job, then its re-embed): kind, status, phase and rows scanned."""

    job_id: int | None = None

    def __call__(self, job: dict[str, Any]) -> None:
        bar = self.bar
        if bar is None or job["id"] != self.job_id:
            self.job_id = job["id"]
            bar = self._open(f"job {job['id']}")
        progress = job["progress"] or {}
        bar.set_postfix_str(f"{job['kind']} {job['status']} {progress.get('phase', '')}".strip())
        if "scanned" in progress:
            bar.n = int(progress["scanned"])
            bar.refresh()
