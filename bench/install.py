"""A first install: head in one pass (db/install.py) against every revision replayed, side by side.

Each round installs into two empty databases of the same server, one each way,
alternating which goes first; the figures are the medians of the rounds.
"""

import statistics
import time
from typing import Any

import psycopg
from psycopg import sql

from vectorkeep.db import migrate
from vectorkeep.db.settings import url_with_database


def _install_seconds(admin_url: str, name: str, *, replay: bool) -> float:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        start = time.perf_counter()
        migrate.upgrade(url_with_database(admin_url, name), replay=replay)
        return time.perf_counter() - start
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run(url: str, rounds: int = 5) -> dict[str, Any]:
    """url: any database of the server (the bench's own); the installs go to databases beside it."""
    admin_url = url_with_database(url, "postgres")
    times: dict[str, list[float]] = {"fresh": [], "replay": []}
    for i in range(rounds):
        order = ("fresh", "replay") if i % 2 == 0 else ("replay", "fresh")
        for way in order:
            times[way].append(_install_seconds(admin_url, f"vk_bench_install_{way}", replay=way == "replay"))
    fresh, replay = statistics.median(times["fresh"]), statistics.median(times["replay"])
    return {
        "revisions": len(migrate.revisions()),
        "fresh_install_s": round(fresh, 3),
        "replay_install_s": round(replay, 3),
        "replay_over_fresh": round(replay / fresh, 1),
    }
