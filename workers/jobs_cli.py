"""The command line of versioned models: train, reembed, jobs, activate, retire."""

import argparse
import json
import re
import sys
import time
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from tqdm import tqdm

from vectorkeep.db.connect import connect
from vectorkeep.sql import query
from vectorkeep.workers.output import emit

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def interval(text: str) -> str:
    """'24h', '30m', '7d' (or any PostgreSQL interval) as a PostgreSQL interval."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    return f"{match.group(1)} {_UNITS[match.group(2)]}" if match else text


def key_values(pairs: list[str] | None) -> dict[str, Any]:
    """key=value pairs; values are read as JSON when they parse (numbers, lists), else text."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: expected key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _job(conn: psycopg.Connection, job_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query("job"), {"id": job_id}).fetchone()
    if row is None:
        raise SystemExit(f"error: no job {job_id}")
    return row


def wait_for_job(url: str, job_id: int, *, quiet: bool = False, follow: bool = True) -> dict[str, Any]:
    """Show a job's progress until it ends (and, for a train job, its re-embed)."""
    bar = tqdm(desc=f"job {job_id}", unit="row", file=sys.stderr, disable=quiet or None)
    with connect(url, autocommit=True) as conn:
        while True:
            job = _job(conn, job_id)
            progress = job["progress"] or {}
            bar.set_postfix_str(f"{job['kind']} {job['status']} {progress.get('phase', '')}".strip())
            if "scanned" in progress:
                bar.n = int(progress["scanned"])
                bar.refresh()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.5)
    bar.close()
    follow_up = (job["metrics"] or {}).get("reembed_job")
    if follow and job["status"] == "succeeded" and follow_up:
        return wait_for_job(url, int(follow_up), quiet=quiet)
    return job


def _show(job: dict[str, Any], as_json: bool) -> int:
    keys = ("id", "kind", "status", "collection", "model", "attempts", "error", "metrics", "snapshot")
    row = {k: job.get(k) for k in keys}
    if not as_json:
        row["metrics"] = json.dumps({k: v for k, v in (row["metrics"] or {}).items() if k != "loss_history"})
        row["snapshot"] = json.dumps(row["snapshot"])
    emit([row], as_json=as_json, max_width=200)
    return 0 if job["status"] == "succeeded" else 1


def cmd_train(url: str, args: argparse.Namespace) -> int:
    params = {**json.loads(args.params or "{}"), **key_values(args.param)}
    if args.activate:
        params["activate"] = key_values(args.activate)
    values = {"model": args.name, "kind": args.kind, "params": Jsonb(params), "collection": args.collection}
    with connect(url, autocommit=True) as conn:
        if args.every:
            row = conn.execute(query("schedule_train"), {**values, "every": interval(args.every)}).fetchone()
            assert row is not None
            print(f"schedule {row[0]}: train {args.name} ({args.kind}) on {args.collection} every {args.every}")
            return 0
        row = conn.execute(query("train"), values).fetchone()
    assert row is not None
    job_id = int(row[0])
    if not args.wait:
        emit([{"job": job_id, "kind": "train", "model": args.name}], as_json=args.json)
        return 0
    train = wait_for_job(url, job_id, quiet=args.json, follow=False)
    status = _show(train, args.json)
    reembed = (train["metrics"] or {}).get("reembed_job")
    if status == 0 and reembed:
        status = _show(wait_for_job(url, int(reembed), quiet=args.json), args.json)
    return status


def cmd_reembed(url: str, args: argparse.Namespace) -> int:
    with connect(url, autocommit=True) as conn:
        row = conn.execute(query("reembed"), {"collection": args.collection, "model": args.model}).fetchone()
    assert row is not None
    if not args.wait:
        emit([{"job": int(row[0]), "kind": "reembed", "model": args.model}], as_json=args.json)
        return 0
    return _show(wait_for_job(url, int(row[0]), quiet=args.json), args.json)


def cmd_jobs(url: str, args: argparse.Namespace) -> int:
    if args.action in ("show", "wait"):
        if args.id is None:
            raise SystemExit(f"error: jobs {args.action} needs a job id")
        if args.action == "wait":
            return _show(wait_for_job(url, args.id, quiet=args.json), args.json)
        with connect(url) as conn:
            return _show(_job(conn, args.id), args.json)
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("list_jobs"), {"limit": args.limit}).fetchall()
    if not args.json:
        for r in rows:
            r["progress"] = json.dumps(r["progress"])
            r["metrics"] = json.dumps({k: v for k, v in (r["metrics"] or {}).items() if k != "loss_history"})
    emit(rows, as_json=args.json)
    return 0


def cmd_activate(url: str, args: argparse.Namespace) -> int:
    if not args.name or not args.collection:
        raise SystemExit("error: models activate needs NAME@VERSION and --collection")
    gates = key_values(args.min_metric)
    with connect(url, autocommit=True) as conn:
        row = conn.execute(
            query("activate"), {"collection": args.collection, "model": args.name, "gates": Jsonb(gates)}
        ).fetchone()
    assert row is not None
    print(f"{row[0]} is now the search model of {args.collection}")
    return 0


def cmd_retire(url: str, args: argparse.Namespace) -> int:
    if not args.name:
        raise SystemExit("error: models retire needs NAME@VERSION")
    with connect(url, autocommit=True) as conn:
        row = conn.execute(query("retire"), {"model": args.name, "collection": args.collection}).fetchone()
    assert row is not None
    print(f"retired {args.name}{' from ' + args.collection if args.collection else ''}: {row[0]} vectors removed")
    return 0


def add_commands(add: Any, url_of: Any) -> None:
    """Add train, reembed and jobs to the parser (add: cli.build_parser's helper)."""
    p = add(
        "train",
        lambda a: cmd_train(url_of(a), a),
        "Queue a train job for the next version of a model (an encoder, an inverter, a map or a next-vector model).",
    )
    p.add_argument("name", help="model name; versions are numbered for you")
    kinds = ["doc2vec", "tfidf", "tfidf-mlp", "vec2text-inverter", "umap", "lvm-lstm", "lvm-gru", "lvm-transformer"]
    p.add_argument("--kind", required=True, choices=kinds)
    p.add_argument("--collection", default="documents")
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a training parameter, e.g. epochs=20 or reduce=svd (repeatable)",
    )
    p.add_argument("--params", help="training parameters as a JSON object")
    p.add_argument(
        "--activate",
        action="append",
        metavar="METRIC=MIN",
        help="activate for search once re-embedded if the metric passes, e.g. recall@10=0.8",
    )
    p.add_argument("--every", help="retrain periodically instead: 24h, 30m, 7d or a PostgreSQL interval")
    p.add_argument("--wait", action="store_true", help="show progress until the job ends")

    p = add(
        "reembed",
        lambda a: cmd_reembed(url_of(a), a),
        "Queue a reembed job: fill a model version's vectors over a collection.",
    )
    p.add_argument("--collection", default="documents")
    p.add_argument("--model", required=True, help="name@version")
    p.add_argument("--wait", action="store_true", help="show progress until the job ends")

    p = add("jobs", lambda a: cmd_jobs(url_of(a), a), "List jobs, show one, or wait for one with a progress bar.")
    p.add_argument("action", nargs="?", choices=["list", "show", "wait"], default="list")
    p.add_argument("id", nargs="?", type=int)
    p.add_argument("--limit", type=int, default=20)
