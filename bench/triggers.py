"""Trigger cost: INSERT throughput into an attached table / the same table without triggers.

Writers are separate processes, each on its own connection, each inserting
one row per statement in autocommit (the pattern where a per-transaction
NOTIFY costs most: every commit takes NOTIFY's queue lock). The two tables
are measured in alternating rounds so that drift hits both. No worker runs:
the figure is what the trigger (enqueue + NOTIFY) adds to the application's
own write.
"""

import multiprocessing
import statistics
import time
from typing import Any

from bench.ingest import texts
from vectorkeep.db.connect import connect

TABLES = {"plain": "bench_plain", "attached": "bench_attached"}


def _writer(url: str, table: str, bodies: list[str], start_at: float, seconds: float, out: Any) -> None:
    done = 0
    with connect(url, autocommit=True) as conn:
        statement = f"INSERT INTO {table} (body) VALUES (%s)"
        conn.execute(statement, (bodies[0],), prepare=True)
        time.sleep(max(0.0, start_at - time.time()))
        deadline = time.time() + seconds
        while time.time() < deadline:
            conn.execute(statement, (bodies[done % len(bodies)],), prepare=True)
            done += 1
    out.put(done)


def _rate(url: str, table: str, writers: int, seconds: float, bodies: list[str]) -> float:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 1.0  # every writer connected and ready before the clock starts
    procs = [ctx.Process(target=_writer, args=(url, table, bodies, start_at, seconds, out)) for _ in range(writers)]
    for p in procs:
        p.start()
    counts = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(counts) / seconds


def run(url: str, *, writers: tuple[int, ...] = (1, 8), seconds: float = 4.0, rounds: int = 3) -> dict[str, Any]:
    with connect(url, autocommit=True) as conn:
        for table in TABLES.values():
            conn.execute(f"CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)")
        conn.execute("SELECT vk.attach(%s, 'id', 'body', 'minilm@1')", (TABLES["attached"],))
    bodies = texts(1000)
    result: dict[str, Any] = {"seconds_per_round": seconds, "rounds": rounds}
    for n in writers:
        rates: dict[str, list[float]] = {k: [] for k in TABLES}
        for r in range(rounds):
            order = list(TABLES) if r % 2 == 0 else list(reversed(TABLES))
            for kind in order:
                rates[kind].append(_rate(url, TABLES[kind], n, seconds, bodies))
        plain, attached = statistics.median(rates["plain"]), statistics.median(rates["attached"])
        result[f"writers_{n}"] = {
            "plain_rows_per_s": round(plain, 1),
            "attached_rows_per_s": round(attached, 1),
            "attached_over_plain": round(attached / plain, 3),
            "rounds_plain": [round(x) for x in rates["plain"]],
            "rounds_attached": [round(x) for x in rates["attached"]],
        }
        result[f"attached_over_plain_{n}_writers"] = round(attached / plain, 3)
    return result
