"""`train`, `reembed` and `jobs list|show|wait|cancel|export-mlflow`: versioned jobs, their progress and
their export to MLflow."""

import argparse
import datetime as dt
import json
import sys
import threading
from typing import Any

from vectorkeep.app import jobs, kinds, mlflow_export
from vectorkeep.cli.output import emit
from vectorkeep.cli.parsing import Commands, interval, key_values, url
from vectorkeep.cli.progress import JobBars, progress_text


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


LOG_LINES = 20


def _when(value: Any) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if isinstance(value, dt.datetime) else "-"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 60 else f"{dt.timedelta(seconds=round(value))} ({value:.0f} s)"


def _pairs(rows: dict[str, Any], indent: str = "  ") -> list[str]:
    """'key  value' lines, the values aligned."""
    if not rows:
        return [f"{indent}(none)"]
    width = max(len(k) for k in rows)
    return [f"{indent}{k.ljust(width)}  {'-' if v is None else v}" for k, v in rows.items()]


def job_text(job: jobs.Job) -> str:
    """A job in full, for people: what it is, how it ended, its timings, progress, params, metrics,
    snapshot and the end of its log."""
    status = job["status"]
    finished = job.get("finished_at") is not None
    progress = dict(job.get("progress") or {})
    reported = progress_text(progress)
    # The rest of the progress: a resumable job's position (a re-embed's last key), a train job's version.
    state = " ".join(
        f"{k}={json.dumps(v, default=str)}"
        for k, v in progress.items()
        if k not in ("phase", "done", "total", "unit", "rate")
    )
    lines = [f"job {job['id']}: {job['kind']}, {status}"]
    lines += _pairs(
        {
            "collection": job.get("collection"),
            "model": job.get("model"),
            "attempts": f"{job.get('attempts', 0)} of {job.get('max_attempts', '?')}",
            "worker": job.get("worker"),
            "error": job.get("error"),
            "created": _when(job.get("created_at")),
            "started": _when(job.get("started_at")),
            "finished": _when(job.get("finished_at")),
            "queued for": _seconds(job.get("queued_seconds"))
            + ("" if job.get("started_at") or finished else " (so far)"),
            "ran for": _seconds(job.get("run_seconds"))
            + ("" if finished or job.get("run_seconds") is None else " (so far)"),
            "progress": reported or None,
            "state": state or None,
        }
    )
    lines += ["", "params:"]
    lines += [f"  {line}" for line in json.dumps(job.get("params") or {}, indent=2, default=str).splitlines()]
    lines += ["", "metrics:", *_pairs(dict(sorted(jobs.summarise_metrics(job.get("metrics")).items())))]
    if job.get("api_usage"):
        lines += ["", "API use (vk.api_usage):", *_pairs(dict(job["api_usage"]))]
    lines += ["", "snapshot:", *_pairs(dict(sorted((job.get("snapshot") or {}).items())))]
    log = jobs.log_lines(job)
    if log:
        shown = log[-LOG_LINES:]
        lines += ["", f"log (last {len(shown)} of {len(log)} lines):" if len(log) > len(shown) else "log:"]
        lines += [f"  {line}" for line in shown]
    else:
        lines += ["", "log: (recorded when the job ends)" if not finished else "log: (none)"]
    return "\n".join(lines)


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
    if args.stop_schedule:
        stopped = jobs.unschedule(url(args), args.name, args.collection)
        emit([{"model": args.name, "schedules_stopped": stopped}], as_json=args.json)
        return 0
    if args.kind is None:
        raise SystemExit("vectorkeep train: --kind is required (see vectorkeep train --help for the kinds)")
    if args.collection is None:
        # As vk.train: a default (the sample corpus) silently trained the wrong texts under the user's model name.
        raise SystemExit(
            "vectorkeep train: --collection is required: the collection whose texts it trains on "
            "(vectorkeep status lists them; the sample corpus is documents)"
        )
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
    """The whole job (`--json`: every column, in a list like the other commands); the exit status: 0 when it
    succeeded."""
    job = jobs.get_job(url(args), args.id)
    if args.json:
        emit([job], as_json=True)
    else:
        print(job_text(job))
    return 0 if job["status"] == "succeeded" else 1


def cmd_wait(args: argparse.Namespace) -> int:
    return wait_and_show(url(args), args.id, as_json=args.json)


def cmd_cancel(args: argparse.Namespace) -> int:
    status = jobs.cancel(url(args), args.id)
    emit([{"job": args.id, "status": status}], as_json=args.json)
    return 0


def cmd_export_mlflow(args: argparse.Namespace) -> int:
    """Finished jobs as MLflow runs; how many runs were created and how many jobs were there already."""
    try:
        results = mlflow_export.export_jobs(url(args), args.tracking_uri, args.experiment, args.job)
    except mlflow_export.MlflowNotInstalled as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    row: dict[str, Any] = {
        "created": sum(r.created for r in results),
        "skipped": sum(not r.created for r in results),
        "experiment": args.experiment,
    }
    if args.json:
        row["runs"] = [{"job": r.job_id, "run_id": r.run_id, "run": r.run_name, "created": r.created} for r in results]
    emit([row], as_json=args.json)
    return 0


def cmd_wait_export(args: argparse.Namespace) -> int:
    """`jobs wait`; with --export-mlflow, each waited job is also exported to MLflow as it ends (a thread of its
    own follows the same jobs, so the waiting and its output stay those of `jobs wait`)."""
    if args.export_mlflow is None:
        return cmd_wait(args)
    try:
        mlflow_export.require_mlflow()  # before the wait, not after it
    except mlflow_export.MlflowNotInstalled as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    url_ = url(args)
    failed: list[Exception] = []

    def export(job: jobs.Job) -> None:
        mlflow_export.export_jobs(url_, args.export_mlflow, args.mlflow_experiment, [job["id"]])

    def follow() -> None:
        try:
            jobs.wait_for_jobs(url_, args.id, on_end=export)
        except Exception as exc:
            failed.append(exc)

    exporter = threading.Thread(target=follow, name="mlflow-export", daemon=True)
    exporter.start()
    status = cmd_wait(args)
    exporter.join()
    if failed:
        raise failed[0]
    return status


def register(commands: Commands) -> None:
    p = commands.add(
        "train",
        cmd_train,
        "Queue a train job for the next version of a model (an encoder, an inverter, a map or a next-vector model).",
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "Kinds and their parameters (checked when the job is queued):\n" + kinds.trainable_help()
    p.add_argument("name", help="model name; versions are numbered for you")
    p.add_argument(
        "--kind", choices=kinds.names(trainable=True), help="what to train (required unless --stop-schedule)"
    )
    p.add_argument("--collection", help="the collection to train on (required, except with --stop-schedule)")
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
        help="activate for search once re-embedded if the metric passes, e.g. agreement@10=0.5 "
        "(a collapsed space, distance_spread < 0.02, is refused unless you gate distance_spread yourself)",
    )
    p.add_argument(
        "--every",
        help="retrain periodically instead: 24h, 30m, 7d or a PostgreSQL interval; an encoder keeps its 3 newest "
        "versions embedded (--param keep=N)",
    )
    p.add_argument(
        "--stop-schedule",
        action="store_true",
        help="stop retraining NAME on a schedule (on --collection, or every collection)",
    )
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
    p = group.add(
        "show",
        cmd_show,
        "A job in full: status, params, progress, metrics, snapshot, error, attempts, timings and its log tail.",
    )
    p.add_argument("id", type=int)
    p = group.add("wait", cmd_wait_export, "Show a job's progress until it ends (a train job: then its re-embed's).")
    p.add_argument("id", type=int)
    p.add_argument("--export-mlflow", metavar="URI", help="export each job to this MLflow tracking URI as it ends")
    p.add_argument(
        "--mlflow-experiment", metavar="NAME", default="vectorkeep", help="with --export-mlflow (default vectorkeep)"
    )
    p = group.add("cancel", cmd_cancel, "Cancel a queued or running job (a running one stops at its next heartbeat).")
    p.add_argument("id", type=int)
    p = group.add("export-mlflow", cmd_export_mlflow, "Finished jobs as MLflow runs (skips those exported before).")
    p.add_argument("--tracking-uri", metavar="URI", help="default: $MLFLOW_TRACKING_URI, else MLflow's default")
    p.add_argument("--experiment", metavar="NAME", default="vectorkeep", help="MLflow experiment (default vectorkeep)")
    p.add_argument("--job", type=int, action="append", metavar="ID", help="only this job (repeatable; default all)")
