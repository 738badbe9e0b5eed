"""python -m bench [--rows N] [--json]: run the benchmarks, print a table, write JSON."""

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

from bench import ingest
from bench.database import bench_database

GOALS = {
    "worker_over_raw": (">=", 0.90),
    "noop_worker_rows_per_s": (">=", 2000),
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=2000, help="backlog size for the ingest figures")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print the JSON result only")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with bench_database() as url:
        figures = ingest.run(url, rows=args.rows, batch_size=args.batch_size)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "ingest": figures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'figure':32} {'value':>12}  goal")
    for key, value in figures.items():
        goal = GOALS.get(key)
        mark = ""
        if goal:
            op, target = goal
            mark = f"{op} {target}  {'met' if value >= target else 'MISSED'}"
        print(f"{key:32} {value!s:>12}  {mark}")
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
