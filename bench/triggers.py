"""Trigger cost: INSERT throughput into an attached table, a "floor" table and the same table without triggers.

Writers are separate processes, each on its own connection, each inserting
one row per statement in autocommit (the pattern where a per-transaction
NOTIFY costs most: every commit takes NOTIFY's queue lock). The three tables
are measured in rotating rounds so that drift hits all of them. No worker
runs: the figures are what the trigger (enqueue + NOTIFY) adds to the
application's own write.

The floor is the physical cost of writing one queue row per application row
and nothing else: the same table with an AFTER INSERT statement trigger that
does exactly `INSERT INTO side SELECT ... FROM new_rows`, where `side` has
vk.queue's columns, defaults, primary key and partial index (no foreign keys,
no ON CONFLICT, no NOTIFY). attached / floor is then the share of the
attached rate that vectorkeep's own logic (the collection_models join, the
upsert, foreign-key checks, the debounced NOTIFY) leaves.
"""

import multiprocessing
import statistics
import time
from typing import Any

from bench.ingest import texts
from vectorkeep.db.connect import connect

TABLES = {"plain": "bench_plain", "floor": "bench_floor", "attached": "bench_attached"}

FLOOR = """
CREATE TABLE bench_side (LIKE vk.queue INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE FUNCTION bench_floor_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_side (collection_id, pk, model_id) SELECT 0, n.id::text, 1 FROM new_rows n;
    RETURN NULL;
END
$$;
CREATE TRIGGER bench_floor_insert AFTER INSERT ON bench_floor
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bench_floor_insert();
"""


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
        conn.execute(FLOOR)
        conn.execute("SELECT vk.attach(%s, 'id', 'body', 'minilm@1')", (TABLES["attached"],))
    bodies = texts(1000)
    kinds = list(TABLES)
    result: dict[str, Any] = {"seconds_per_round": seconds, "rounds": rounds}
    for n in writers:
        rates: dict[str, list[float]] = {k: [] for k in TABLES}
        for r in range(rounds):
            for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:  # each table first once
                rates[kind].append(_rate(url, TABLES[kind], n, seconds, bodies))
        plain, floor, attached = (statistics.median(rates[k]) for k in ("plain", "floor", "attached"))
        result[f"writers_{n}"] = {
            "plain_rows_per_s": round(plain, 1),
            "floor_rows_per_s": round(floor, 1),
            "attached_rows_per_s": round(attached, 1),
            **{f"rounds_{k}": [round(x) for x in rates[k]] for k in TABLES},
        }
        result[f"attached_over_plain_{n}_writers"] = round(attached / plain, 3)
        result[f"floor_over_plain_{n}_writers"] = round(floor / plain, 3)
        result[f"attached_over_floor_{n}_writers"] = round(attached / floor, 3)
    return result
