"""`train`, `reembed` and `jobs list|show|wait|cancel`: versioned jobs and their progress."""

import argparse
import json
from typing import Any

from vectorkeep.app import jobs
from vectorkeep.cli.output import emit
from vectorkeep.cli.parsing import Commands, interval, key_values, url
from vectorkeep.cli.progress import JobBars

TRAIN_KINDS = ["doc2vec", "tfidf", "tfidf-mlp", "vec2text-inverter", "umap", "lvm-lstm", "lvm-gru", "lvm-transformer"]


def _metrics(metrics: dict[str, Any] | None) -> str:
    """Metrics as one line, without the loss history (a list as long as the training)."""
    return json.dumps({k: v for k, v in (metrics or {}).items() if k != "loss_history"})


def show_job(job: jobs.Job, as_json: bool) -> int:
    """Print a job; the exit status: 0 when it succeeded."""
    keys = ("id", "kind", "status", "collection", "model", "attempts", "error", "metrics", "snapshot")
    row = {k: job.get(k) for k in keys}
    if not as_json:
        row["metrics"] = _metrics(row["metrics"])
        row["snapshot"] = json.dumps(row["snapshot"])
    emit([row], as_json=as_json, max_width=200)
    return 0 if job["status"] == "succeeded" else 1


def wait_and_show(url_: str, job_id: int, *, as_json: bool, each: bool = False) -> int:
    """Wait for a job and the jobs it queues, a progress bar each; print the last one (each: every one as it
    ends). The exit status of the last one printed."""
    statuses: list[int] = []
    with JobBars(quiet=as_json) as bars:

        def on_end(job: jobs.Job) -> None:
            if each:
                bars.close()
                statuses.append(show_job(job, as_json))

        ended = jobs.wait_for_jobs(url_, job_id, on_progress=bars, on_end=on_end)
    return statuses[-1] if each else show_job(ended[-1], as_json)


def cmd_train(args: argparse.Namespace) -> int:
    params = {**json.loads(args.params or "{}"), **key_values(args.param)}
    if args.activate:
        params["activate"] = key_values(args.activate)
    request = jobs.TrainRequest(model=args.name, kind=args.kind, collection=args.collection, params=params)
    if args.every:
        schedule = jobs.schedule_train(url(args), request, interval(args.every))
        print(f"schedule {schedule}: train {args.name} ({args.kind}) on {args.collection} every {args.every}")
        return 0
    job_id = jobs.train(url(args), request)
    if not args.wait:
        emit([{"job": job_id, "kind": "train", "model": args.name}], as_json=args.json)
        return 0
    return wait_and_show(url(args), job_id, as_json=args.json, each=True)


def cmd_reembed(args: argparse.Namespace) -> int:
    job_id = jobs.reembed(url(args), args.collection, args.model)
    if not args.wait:
        emit([{"job": job_id, "kind": "reembed", "model": args.model}], as_json=args.json)
        return 0
    return wait_and_show(url(args), job_id, as_json=args.json)


def cmd_list(args: argparse.Namespace) -> int:
    rows = jobs.list_jobs(url(args), args.limit)
    if not args.json:
        for r in rows:
            r["progress"] = json.dumps(r["progress"])
            r["metrics"] = _metrics(r["metrics"])
    emit(rows, as_json=args.json)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    return show_job(jobs.get_job(url(args), args.id), args.json)


def cmd_wait(args: argparse.Namespace) -> int:
    return wait_and_show(url(args), args.id, as_json=args.json)


def cmd_cancel(args: argparse.Namespace) -> int:
    status = jobs.cancel(url(args), args.id)
    emit([{"job": args.id, "status": status}], as_json=args.json)
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "train",
        cmd_train,
        "Queue a train job for the next version of a model (an encoder, an inverter, a map or a next-vector model).",
    )
    p.add_argument("name", help="model name; versions are numbered for you")
    p.add_argument("--kind", required=True, choices=TRAIN_KINDS)
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

    p = commands.add("reembed", cmd_reembed, "Queue a reembed job: fill a model version's vectors over a collection.")
    p.add_argument("--collection", default="documents")
    p.add_argument("--model", required=True, help="name@version")
    p.add_argument("--wait", action="store_true", help="show progress until the job ends")

    p, group = commands.group(
        "jobs", "List jobs (the default), show one, wait for one with a progress bar, or cancel one.", default=cmd_list
    )
    p.add_argument("--limit", type=int, default=20, help="jobs to list, newest first (default 20)")
    p = group.add("list", cmd_list, "The latest jobs, newest first.")
    p.add_argument("--limit", type=int, default=argparse.SUPPRESS, help="jobs to list (default 20)")
    p = group.add("show", cmd_show, "A job: status, error, metrics, snapshot.")
    p.add_argument("id", type=int)
    p = group.add("wait", cmd_wait, "Show a job's progress until it ends (a train job: then its re-embed's).")
    p.add_argument("id", type=int)
    p = group.add("cancel", cmd_cancel, "Cancel a queued or running job (a running one stops at its next heartbeat).")
    p.add_argument("id", type=int)
