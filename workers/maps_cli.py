"""The command line of maps and sequences: gaps, filling them, a picture; row order and predictions."""

import argparse
from collections.abc import Callable
from typing import Any

from vectorkeep.db import registry
from vectorkeep.db.connect import connect
from vectorkeep.sql import query
from vectorkeep.workers.jobs_cli import wait_for_job
from vectorkeep.workers.maps import gaps
from vectorkeep.workers.output import emit


def _gaps(conn: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    params = {"model": args.model, "cells": args.cells, "min_neighbours": args.min_neighbours}
    with conn.cursor() as cur:
        rows = cur.execute(query("map_gaps"), params).fetchall()
    return [{"cell_x": r[0], "cell_y": r[1], "x": r[2], "y": r[3], "neighbours": r[4]} for r in rows]


def _shown(rows: list[dict[str, Any]], as_json: bool) -> list[dict[str, Any]]:
    """The decoded vector goes to scripts (--json), not to a terminal table."""
    return rows if as_json else [{k: v for k, v in r.items() if k != "vector"} for r in rows]


def cmd_map(args: argparse.Namespace, url: str) -> int:
    with connect(url) as conn:
        version = registry.by_spec(conn, args.model)
        if args.action == "fill":
            if args.x is None or args.y is None:
                raise SystemExit("error: map fill needs X and Y")
            emit(_shown([gaps.fill(conn, version, args.x, args.y)], args.json), as_json=args.json)
            return 0
        found = _gaps(conn, args)
        filled = [gaps.fill(conn, version, g["x"], g["y"]) for g in found[: args.fill]]
        if args.action == "plot":
            gaps.plot(conn, version, args.out, found, filled)
            print(f"wrote {args.out}: {len(found)} gaps, {len(filled)} filled")
            return 0
    emit(_shown(filled, args.json) if args.fill else found, as_json=args.json)
    return 0


def cmd_order(args: argparse.Namespace, url: str) -> int:
    with connect(url) as conn:
        conn.execute(
            query("set_order"), {"collection": args.collection, "group": args.group, "position": args.position}
        )
        conn.commit()
    print(f"collection {args.collection!r} is ordered by ({args.group}, {args.position})")
    return 0


def cmd_predict(args: argparse.Namespace, url: str) -> int:
    with connect(url) as conn:
        row = conn.execute(
            query("predict_next"), {"collection": args.collection, "group_key": args.group, "model": args.model}
        ).fetchone()
        conn.commit()
    assert row is not None
    job = wait_for_job(url, int(row[0]), quiet=args.json)
    if job["status"] != "succeeded":
        raise SystemExit(f"error: predict job {row[0]} {job['status']}: {job.get('error')}")
    with connect(url) as conn, conn.cursor() as cur:
        rows = cur.execute(query("predicted"), {"job_id": row[0], "k": args.k}).fetchall()
    emit([{"pk": r[0], "similarity": round(r[2], 4), "body": r[1]} for r in rows], as_json=args.json)
    return 0


def add_commands(add: Callable[..., argparse.ArgumentParser], url_of: Callable[[argparse.Namespace], str]) -> None:
    p = add(
        "map",
        lambda a: cmd_map(a, url_of(a)),
        "A map's gaps (empty regions between rows), filled with decoded vectors and text, or drawn to a PNG.",
    )
    p.add_argument("action", choices=["gaps", "fill", "plot"])
    p.add_argument("x", nargs="?", type=float, help="fill: the map coordinate to decode")
    p.add_argument("y", nargs="?", type=float)
    p.add_argument("--model", required=True, help="the map version, e.g. map@1")
    p.add_argument("--cells", type=int, default=24, help="grid cells a side (default 24)")
    p.add_argument("--min-neighbours", type=int, default=3, help="populated cells around a gap (default 3)")
    p.add_argument("--fill", type=int, default=0, help="gaps, plot: decode the first N gaps to text")
    p.add_argument("--out", default="map.png", help="plot: the PNG to write (default map.png)")

    p = add(
        "order",
        lambda a: cmd_order(a, url_of(a)),
        "Declare a collection's rows ordered (groups, position).",
        json_flag=False,
    )
    p.add_argument("collection")
    p.add_argument("--group", required=True, help="SQL expression naming a row's sequence, e.g. doc_id")
    p.add_argument("--position", required=True, help="SQL expression ordering rows within it, e.g. chunk_no")

    p = add("predict", lambda a: cmd_predict(a, url_of(a)), "Predict a group's next vector; show the nearest rows.")
    p.add_argument("collection")
    p.add_argument("group", help="the group's key (its group expression's value, as text)")
    p.add_argument("--model", help="a next-vector version (default: the collection's active one)")
    p.add_argument("-k", type=int, default=5)
