"""Load: a bounded insert storm from several client connections while two worker
processes embed (all on this machine, over the Unix socket).

Reports rows/s written, rows/s embedded, the queue depth over time and the
final invariant (every row embedded once, from its current text, nothing queued).

    python -m bench.load [--clients 4] [--rows 500] [--seconds 10] [--workers 2]
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg

from bench.database import bench_database
from bench.ingest import texts


def _client(url: str, rows: list[str], seconds: float, done: list[float]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for body in rows:
            conn.execute("INSERT INTO vk.documents (body) VALUES (%s)", (body,))
            time.sleep(seconds / len(rows))
    done.append(time.perf_counter())


def _one(conn: psycopg.Connection, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return row[0] if row else None


def run(url: str, *, clients: int, rows: int, seconds: float, workers: int) -> dict[str, Any]:
    env = {**os.environ, "VECTORKEEP_DATABASE_URL": url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "vectorkeep", "worker", "--no-jobs"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    corpus = texts(clients * rows)
    samples: list[dict[str, float]] = []
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            # Wait until the workers are up (their LISTEN connections), so the storm measures steady state.
            deadline = time.monotonic() + 120
            while (
                _one(conn, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'vectorkeep listen%'")
                < workers
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("workers did not start")
                time.sleep(0.2)
            finished: list[float] = []
            start = time.perf_counter()
            threads = [
                threading.Thread(target=_client, args=(url, corpus[i * rows : (i + 1) * rows], seconds, finished))
                for i in range(clients)
            ]
            for t in threads:
                t.start()
            total = clients * rows
            while True:
                embedded = _one(conn, "SELECT count(*) FROM vk.embeddings")
                samples.append(
                    {
                        "t": round(time.perf_counter() - start, 2),
                        "written": _one(conn, "SELECT count(*) FROM vk.documents"),
                        "queued": _one(conn, "SELECT count(*) FROM vk.queue"),
                        "embedded": embedded,
                    }
                )
                if embedded >= total or time.perf_counter() - start > seconds + 600:
                    break
                time.sleep(0.5)
            end = time.perf_counter()
            for t in threads:
                t.join()
            stale = _one(
                conn,
                "SELECT count(*) FROM vk.documents d LEFT JOIN vk.embeddings e ON e.pk = d.id::text "
                "WHERE e.text_sha256 IS DISTINCT FROM sha256(convert_to(d.body, 'UTF8'))",
            )
            queued = _one(conn, "SELECT count(*) FROM vk.queue")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
    written_seconds = max(finished) - start
    return {
        "clients": clients,
        "rows_per_client": rows,
        "workers": workers,
        "rows": total,
        "rows_per_s_written": round(total / written_seconds, 1),
        "rows_per_s_embedded": round(total / (end - start), 1),
        "max_queue_depth": max(s["queued"] for s in samples),
        "invariant_ok": stale == 0 and queued == 0,
        "queue_depth_over_time": [(s["t"], s["queued"]) for s in samples[:: max(1, len(samples) // 20)]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rows", type=int, default=250, help="rows each client inserts")
    parser.add_argument("--seconds", type=float, default=10.0, help="over how long each client spreads them")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with bench_database() as url:
        print(
            json.dumps(
                run(url, clients=args.clients, rows=args.rows, seconds=args.seconds, workers=args.workers), indent=2
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
