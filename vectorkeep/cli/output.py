"""Human tables by default, JSON for scripts (--json)."""

import datetime as dt
import decimal
import json
import sys
from collections.abc import Sequence
from typing import Any


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def emit(rows: Sequence[dict[str, Any]], *, as_json: bool, max_width: int = 80) -> None:
    if as_json:
        json.dump([{k: _plain(v) for k, v in r.items()} for r in rows], sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    if not rows:
        print("(none)")
        return
    columns = list(rows[0])
    cells = [[_cell(r[c], max_width) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any, max_width: int) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    text = " ".join(str(_plain(value)).split())
    return text if len(text) <= max_width else text[: max_width - 1] + "…"
