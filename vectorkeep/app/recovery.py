"""Text back from vectors: queue a recover job for an adopted table, or an evaluation of recovery."""

from dataclasses import asdict, dataclass
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from vectorkeep.app.jobs import Job
from vectorkeep.db import kinds
from vectorkeep.db.connect import connect
from vectorkeep.sql import query

# best: the best ready inverter for the encoder beside the nearest stored text, the better kept per row.
METHODS = ("best", "nearest", *(k.removesuffix("-inverter") for k in kinds.names(role="inverter")))


@dataclass(frozen=True)
class InversionSearch:
    """How hard an inverter searches for each vector."""

    max_seconds: float | None = None  # time box a vector (default: the inverter's own)
    steps: int = 1  # vec2text: correction steps
    beam_width: int = 4  # vec2text: candidates a step


def recover(
    url: str,
    adopted: str,
    *,
    method: str = "best",
    reference: str | None = None,
    search: InversionSearch | None = None,
) -> int:
    """Queue a recover job: text for every row of an adopted table, into vk.recovered; its id.

    method: best (the best ready inverter beside the nearest stored text), nearest, or an inverter's method.
    reference: for best and nearest, the version whose stored texts to search; for an inverter's method,
    the inverter (default: the best ready one for an encoder proven compatible by fingerprint).
    """
    params = _options(search)
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
    search: InversionSearch | None = None,
) -> int:
    """Queue an evaluation of recovery on held-out rows (nearest other text, an inverter, best); its job id."""
    params = {"rows": rows, **_options(search)}
    with connect(url, autocommit=True) as conn:
        row = conn.execute(
            query("evaluate_recovery"),
            {"collection": collection, "model": model, "inverter": inverter, "params": Jsonb(params)},
        ).fetchone()
    assert row is not None
    return int(row[0])


def _options(search: InversionSearch | None) -> dict[str, Any]:
    return {k: v for k, v in asdict(search or InversionSearch()).items() if v is not None}


# The columns of recovery_scores, in order; a figure a method lacks is None (the inverter's and the
# baseline's model, best's inverter_chosen), and figures not named here follow these, sorted.
SCORE_COLUMNS = (
    "method",
    "model",
    "n",
    "exact_match",
    "token_f1",
    "bleu",
    "mean_cosine",
    "seconds_per_vector",
    "inverter_chosen",
)


def _method_order(method: str) -> tuple[int, str]:
    return (0 if method == "nearest" else 2 if method == "best" else 1, method)


def recovery_scores(job: Job) -> list[dict[str, Any]]:
    """A finished evaluation's scores, one row a method: the baseline (nearest) first, then the inverter(s),
    then best; every row with the same columns (SCORE_COLUMNS, None where a method has no such figure).

    The job's metrics are jsonb, which keeps no key order (shorter keys first: "best" before "nearest"),
    and the methods' figures differ (best has inverter_chosen and no model): both are set here."""
    results = {m: s for m, s in (job["metrics"] or {}).items() if isinstance(s, dict)}
    extra = sorted({k for s in results.values() for k in s} - set(SCORE_COLUMNS))
    columns = [*SCORE_COLUMNS, *extra]
    return [
        {c: method if c == "method" else results[method].get(c) for c in columns}
        for method in sorted(results, key=_method_order)
    ]


def recovered_text(url: str, adopted: str) -> list[dict[str, Any]]:
    """The recovered text of each row of an adopted table: the best method's, with the others'."""
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query("recovered_text"), {"adopted": adopted}).fetchall()
