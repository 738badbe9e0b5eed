"""Text back from vectors: queue a recover job for an adopted table, or an evaluation of recovery."""

from dataclasses import asdict, dataclass
from typing import Any

from psycopg.types.json import Jsonb

from vectorkeep.app.jobs import Job
from vectorkeep.db.connect import connect
from vectorkeep.sql import query

METHODS = ("nearest", "vec2text")


@dataclass(frozen=True)
class Vec2TextSearch:
    """How hard vec2text searches for each vector."""

    steps: int = 1  # correction steps
    beam_width: int = 4  # candidates a step
    max_seconds: float = 10.0  # time box a vector


def recover(
    url: str,
    adopted: str,
    *,
    method: str = "nearest",
    reference: str | None = None,
    search: Vec2TextSearch | None = None,
) -> int:
    """Queue a recover job: text for every row of an adopted table, into vk.recovered; its id.

    reference: for nearest, the version whose stored texts to search; for vec2text,
    the inverter (default: one proven compatible by fingerprint).
    """
    params = asdict(search or Vec2TextSearch())
    with connect(url, autocommit=True) as conn:
        row = conn.execute(
            query("recover_adopted"),
            {"adopted": adopted, "method": method, "reference": reference, "params": Jsonb(params)},
        ).fetchone()
    assert row is not None
    return int(row[0])


def evaluate_recovery(
    url: str,
    collection: str = "documents",
    *,
    model: str | None = None,
    inverter: str | None = None,
    rows: int = 50,
    search: Vec2TextSearch | None = None,
) -> int:
    """Queue an evaluation of recovery on held-out rows (nearest stored text and vec2text); its job id."""
    params = {"rows": rows, **asdict(search or Vec2TextSearch())}
    with connect(url, autocommit=True) as conn:
        row = conn.execute(
            query("evaluate_recovery"),
            {"collection": collection, "model": model, "inverter": inverter, "params": Jsonb(params)},
        ).fetchone()
    assert row is not None
    return int(row[0])


def recovery_scores(job: Job) -> list[dict[str, Any]]:
    """A finished evaluation's scores, one row a method."""
    results = job["metrics"] or {}
    return [{"method": method, **results[method]} for method in METHODS if method in results]
