"""python -m bench: every figure of bench/, side by side in one run; a table, and JSON in bench/results/.

python -m bench                      # all sections (about 27 minutes on 2 cores)
python -m bench --only ingest latency --rows 5000
python -m bench --only textquery filters relevance
python -m bench --only textload      # text queries under load (about 3 minutes)
python -m bench --only install       # a first install: one pass against the revisions replayed
python -m bench --json               # the JSON only, on stdout
"""

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    filters,
    ingest,
    install,
    latency,
    memory,
    recovery,
    relevance,
    scale,
    search,
    text_queries,
    text_query_load,
    triggers,
)
from bench.database import bench_database

# figure -> (comparison, goal); every other figure is printed as information.
GOALS: dict[str, tuple[str, float]] = {
    "ingest.worker_over_raw": (">=", 0.90),
    "ingest.noop_worker_rows_per_s": (">=", 2000),
    "ingest.noop_worker_rows_per_s_without_index": (">=", 2000),
    "ingest.noop_worker_over_same_table_insert": (">=", 0.9),
    "latency.p50_excluding_encode_ms": ("<=", 20),
    "latency.p99_excluding_encode_ms": ("<=", 100),
    "triggers.attached_over_plain_1_writers": (">=", 0.8),
    "triggers.attached_over_plain_8_writers": (">=", 0.8),
    "triggers.attached_over_floor_1_writers": (">=", 0.9),
    "triggers.attached_over_floor_8_writers": (">=", 0.9),
    "search.vk_search_over_hand_written": ("<=", 1.15),
    "search.recall_at_10_default_ef_search": (">=", 0.95),
    "backfill.reembed_growth_ratio": ("<=", 1.2),
    "bulkload.backfill_over_copy_and_index": (">=", 0.7),
    "halfvec.halfvec_index_over_vector": ("<=", 0.55),
    "halfvec.halfvec_recall_minus_vector": (">=", -0.01),
    "textquery.miss_over_baseline_p50": ("<=", 1.3),
    "textquery.miss_over_baseline_p95": ("<=", 1.3),
    "textquery.hit_over_vector_p50": ("<=", 1.1),
    "textload.storm_p95_over_quiet_p95": ("<=", 5),
    "textload.new_row_p95_during_backfill_over_idle": ("<=", 2),
    "filters.p10_rows_min": (">=", 10),
    "filters.p1_rows_min": (">=", 10),
    "filters.p01_rows_min": (">=", 10),
    "filters.p10_recall_at_10": (">=", 0.95),
    "filters.p1_recall_at_10": (">=", 0.95),
    "filters.p01_recall_at_10": (">=", 0.95),
    "filters.p1_over_unfiltered": ("<=", 3),
    "relevance.hybrid_over_best_single": (">=", 1.0),
    "recovery.sentences_best_mean_cosine": (">=", 0.90),
    "recovery.docstrings_best_mean_cosine": (">=", 0.90),
    "recovery.sentences_best_token_f1_over_nearest": (">=", 2.0),
    "recovery.docstrings_best_token_f1_over_nearest": (">=", 2.0),
    "recovery.gaps_in_cell": (">=", 0.5),
    "install.replay_over_fresh": (">=", 5),
}
SECTIONS = (
    "ingest",
    "latency",
    "triggers",
    "search",
    "backfill",
    "bulkload",
    "halfvec",
    "textquery",
    "textload",
    "filters",
    "relevance",
    "recovery",
    "install",
)


def _backfill(small: int, large: int) -> dict[str, Any]:
    [figure] = memory.compare(small, large, tasks=("reembed",))
    return {"reembed_growth_ratio": figure["growth_ratio"], "small": figure["small"], "large": figure["large"]}


def _in_database(run: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    with bench_database() as url:
        return run(url)


def _verdict(key: str, value: Any) -> str:
    if key not in GOALS or not isinstance(value, int | float):
        return ""
    op, target = GOALS[key]
    met = value >= target if op == ">=" else value <= target
    return f"{op} {target:g}  {'met' if met else 'MISSED'}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--rows", type=int, default=5000, help="backlog size for the ingest figures")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--inserts", type=int, default=200, help="single-row inserts for the latency figures")
    parser.add_argument("--vectors", type=int, default=100_000, help="vectors for the search figures")
    parser.add_argument("--text-queries", type=int, default=100, help="query texts for the textquery figures")
    parser.add_argument("--backfill-rows", type=int, nargs=2, default=[10_000, 200_000])
    parser.add_argument("--bulk-rows", type=int, default=200_000, help="rows of the bulkload figure (bench/scale.py)")
    parser.add_argument("--json", action="store_true", help="print the JSON result only")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "ingest": lambda: _in_database(lambda url: ingest.run(url, rows=args.rows, batch_size=args.batch_size)),
        "latency": lambda: _in_database(lambda url: latency.run(url, inserts=args.inserts)),
        "triggers": lambda: _in_database(triggers.run),
        "search": lambda: _in_database(lambda url: search.run(url, vectors=args.vectors, queries=200)),
        "backfill": lambda: _backfill(*args.backfill_rows),
        "bulkload": lambda: _in_database(lambda url: scale.bulkload(url, rows=args.bulk_rows)),
        "halfvec": lambda: _in_database(lambda url: scale.halfvec(url, vectors=args.vectors, queries=200)),
        "textquery": lambda: _in_database(lambda url: text_queries.run(url, queries=args.text_queries)),
        "textload": lambda: _in_database(text_query_load.run),
        "filters": lambda: _in_database(lambda url: filters.run(url, vectors=args.vectors, queries=100)),
        "relevance": lambda: _in_database(relevance.run),
        "recovery": lambda: _in_database(recovery.run),
        "install": lambda: _in_database(install.run),
    }
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    for section in args.only:
        start = time.perf_counter()
        result[section] = runs[section]()
        result[section]["section_seconds"] = round(time.perf_counter() - start, 1)
        if not args.json:
            print(f"[{section} done in {result[section]['section_seconds']} s]", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"\n{'figure':48} {'value':>12}  goal")
    for section in args.only:
        for key, value in result[section].items():
            if isinstance(value, dict | list):
                continue
            name = f"{section}.{key}"
            print(f"{name:48} {value!s:>12}  {_verdict(name, value)}")
    print(f"\nmachine: {result['machine']}\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
