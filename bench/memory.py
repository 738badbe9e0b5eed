"""Peak memory of training and re-embedding as the collection grows.

Each measurement runs in a fresh process (`python -m bench.memory --child`)
and reports its peak RSS and the growth over its RSS right before the work
(after imports), for a tfidf train job and a reembed job (no-op encoder) over
n rows; `python -m bench.memory` compares the growth at two sizes. The
reembed runs without the new version's HNSW index: its memory is the
server's, not the job's, and pgvector's insert would make 200k rows take ten
minutes here (bench/ingest.py measures it).
"""

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from bench.database import bench_database, drop_index
from bench.ingest import NOOP_KIND, NoopEncoder, texts
from vectorkeep.db.connect import connect


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the
    # parent through fork and exec, so a child of a large process (python -m
    # bench after its search section) would report the parent's peak.
    return _status_mb("VmHWM")


def child(url: str, task: str) -> dict[str, Any]:
    from vectorkeep.workers import kinds
    from vectorkeep.workers.jobs import HANDLERS
    from vectorkeep.workers.jobs.runner import JobRunner
    from vectorkeep.workers.service import Service

    kinds.EXTRA_LOADERS["noop"] = NoopEncoder
    with connect(url, autocommit=True) as conn:
        if task == "train":
            conn.execute("SELECT vk.train('mem', 'tfidf', '{\"dim\": 64}', 'bench_rows')")
        else:
            conn.execute("SELECT vk.reembed('bench_rows', 'noop@1')")
            drop_index(conn, "bench_rows", "noop@1")
    before = _rss_mb()
    start = time.perf_counter()
    if task == "train":
        JobRunner(url, handlers={"train": HANDLERS["train"]}).run(until_idle=True)
    else:
        Service(url).run(until_idle=True)
    return {
        "task": task,
        "seconds": round(time.perf_counter() - start, 2),
        "rss_before_mb": round(before, 1),
        "peak_mb": round(_peak_mb(), 1),
        "growth_mb": round(_peak_mb() - before, 1),
    }


def measure(rows: int, tasks: tuple[str, ...] = ("train", "reembed")) -> list[dict[str, Any]]:
    results = []
    with bench_database() as url:
        with connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_rows (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)")
            conn.execute(NOOP_KIND)
            conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('noop', 1, 'noop', 384)")
            conn.execute("SELECT vk.attach('bench_rows', 'id', 'body', NULL)")
            with conn.cursor() as cur, cur.copy("COPY bench_rows (body) FROM STDIN") as copy:
                for body in texts(rows):
                    copy.write_row((body,))
            conn.execute("VACUUM ANALYZE bench_rows")
        for task in tasks:
            done = subprocess.run(
                [sys.executable, "-m", "bench.memory", "--child", task, "--url", url],
                capture_output=True,
                text=True,
                check=True,
            )
            results.append({"rows": rows, **json.loads(done.stdout.strip().splitlines()[-1])})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--rows", type=int, nargs=2, default=[5000, 20000])
    parser.add_argument("--tasks", nargs="+", choices=["train", "reembed"], default=["train", "reembed"])
    parser.add_argument("--child", choices=["train", "reembed"])
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.url, args.child)))
        return 0
    small, large = args.rows
    for figure in compare(small, large, tasks=tuple(args.tasks)):
        print(json.dumps(figure))
    return 0


def compare(small_rows: int, large_rows: int, tasks: tuple[str, ...] = ("train", "reembed")) -> list[dict[str, Any]]:
    """Peak-RSS growth of each task at two sizes, and large / small."""
    small, large = measure(small_rows, tasks), measure(large_rows, tasks)
    figures = []
    for a, b in zip(small, large, strict=True):
        ratio = b["growth_mb"] / a["growth_mb"] if a["growth_mb"] else float("nan")
        figures.append(
            {
                "task": a["task"],
                "small": a,
                "large": b,
                "growth_ratio": round(ratio, 3),
                "rows_ratio": b["rows"] / a["rows"],
            }
        )
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
