"""Progress bars on stderr (tqdm) for long work: embedding a backlog, waiting for jobs.

Each is a callback an application-layer operation calls as the work goes on,
and a context manager that closes its bar. tqdm is imported when a bar is drawn.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from tqdm import tqdm


class _Bar:
    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: tqdm | None = None

    def _open(self, desc: str, total: int | None = None, **options: Any) -> tqdm:
        from tqdm import tqdm

        self.close()
        options = {"unit": "row", **options}
        self.bar = tqdm(total=total, desc=desc, file=sys.stderr, disable=self.quiet or None, **options)
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


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def _pace(done: int | None, total: int | None, rate: float | None, unit: str) -> list[str]:
    """['41.5 rows/s', 'eta 00:06'] from a reported rate; nothing before the job has a rate."""
    if not rate or done is None:
        return []
    pace = [f"{_number(float(rate))} {unit}/s"]
    if total is not None and int(total) > int(done):
        from tqdm import tqdm

        pace.append(f"eta {tqdm.format_interval((int(total) - int(done)) / float(rate))}")
    return pace


def progress_text(progress: dict[str, Any] | None) -> str:
    """What a job reported (JobContext.report) as one line: 'embedding: 120/400 rows (30%), 41.5 rows/s, eta 6s'.
    Empty when it reported nothing yet."""
    progress = progress or {}
    phase = str(progress.get("phase") or "")
    done, total, unit = progress.get("done"), progress.get("total"), str(progress.get("unit") or "rows")
    if done is None:
        return phase
    text = f"{done}/{total} {unit}" if total is not None else f"{done} {unit}"
    if total:
        text += f" ({100 * done / total:.0f}%)"
    text = ", ".join([text, *_pace(done, total, progress.get("rate"), unit)])
    return f"{phase}: {text}" if phase else text


class JobBars(_Bar):
    """One bar per job waited for (a train job, then its re-embed), drawn from the progress the job reports
    (phase, done out of total units, rate: JobContext.report); a new bar when the phase changes."""

    key: tuple[Any, ...] | None = None

    def __call__(self, job: dict[str, Any]) -> None:
        progress = job.get("progress") or {}
        phase = str(progress.get("phase") or "")
        done = progress.get("done", progress.get("scanned"))  # scanned: a job of an older worker
        total = progress.get("total") if progress.get("done") is not None else None
        unit = str(progress.get("unit") or "rows")
        mode = "none" if done is None else "count" if total is None else "bar"
        key = (job["id"], phase, unit, mode)
        bar = self.bar
        if bar is None or key != self.key:
            self.key = key
            formats = {
                "bar": "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit}{postfix}",
                "count": "{desc}: {n_fmt} {unit}{postfix}",
                "none": "{desc}{postfix}",
            }
            desc = f"job {job['id']} {job['kind']} {phase}".rstrip()
            bar = self._open(desc, total, unit=unit, bar_format=formats[mode])
        if total is not None:
            bar.total = int(total)
        if done is not None:
            bar.n = int(done)
        details = _pace(done, total, progress.get("rate"), unit)
        if job["status"] != "running" or not phase:
            details.append(str(job["status"]))
        bar.set_postfix_str(", ".join(details), refresh=False)
        bar.refresh()
