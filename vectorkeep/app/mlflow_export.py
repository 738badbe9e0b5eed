"""Finished jobs as MLflow runs: one run a job, with its params, metrics, loss history, tags and log.

An optional extra (``pip install 'vectorkeep[mlflow]'``): mlflow is imported when
an export runs, never when vectorkeep is imported. The export is idempotent: a
job already exported from the same database (a run tagged with its
``vectorkeep.job_id`` and ``vectorkeep.database``) is skipped, so exporting
again, or as each job ends (``vectorkeep jobs wait --export-mlflow URI``), adds
nothing twice.

It exports what its role may read, nothing more: it reads vk.jobs, whose row
security shows a role only the jobs over tables it may SELECT (and with model
versions it may use), so a run never carries another table's keys, counts,
log lines or errors. Export as an operator (a member of vk_worker or
vk_admin) to export every job.
"""

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from psycopg.rows import dict_row

from vectorkeep.db.connect import connect
from vectorkeep.sql import query

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'vectorkeep[mlflow]'"

FINISHED = ("succeeded", "failed", "cancelled")
RUN_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "cancelled": "KILLED"}

# A tag names the job a run was exported from: how a second export finds it.
JOB_TAG = "vectorkeep.job_id"
DATABASE_TAG = "vectorkeep.database"

# MLflow's batch limits (mlflow.utils.validation), the same since 2.x.
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000
# Keys: alphanumerics, _ - . space : / only; "recall@10" becomes "recall_at_10".
_INVALID_KEY_CHARS = re.compile(r"[^\w\-. :/]")
_MAX_KEY_LENGTH = 250


class MlflowNotInstalled(ImportError):
    """mlflow (the optional extra) is not installed."""


@dataclass(frozen=True)
class ExportResult:
    """One finished job and its MLflow run: created now, or found from an earlier export and left as it was."""

    job_id: int
    run_id: str
    run_name: str
    created: bool


def require_mlflow() -> Any:
    """The mlflow module; MlflowNotInstalled (saying how to install it) when the extra is missing."""
    try:
        import mlflow
        import mlflow.entities
        import mlflow.tracking
    except ImportError as exc:
        raise MlflowNotInstalled(f"exporting to MLflow needs mlflow: {INSTALL_HINT}") from exc
    return mlflow


def metric_key(key: str) -> str:
    """A vectorkeep name as an MLflow key (metric, param): recall@10 -> recall_at_10."""
    return _INVALID_KEY_CHARS.sub("_", key.replace("@", "_at_"))[:_MAX_KEY_LENGTH]


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys ({"params": {"dim": 8}} -> {"params.dim": 8}); other values as they are."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flat_params(value, f"{name}."))
        else:
            out[name] = value
    return out


def param_value(value: Any, limit: int) -> str:
    """A param's value as MLflow stores it: text as is, anything else as JSON, cut to MLflow's limit."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:limit]


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_history(key: str, value: Any) -> bool:
    return (key == "history" or key.endswith("_history")) and isinstance(value, list)


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric scalars of a metrics object, nested dicts as dotted keys; histories and ids left out."""
    out: dict[str, float] = {}
    for key, value in flat_params(metrics).items():
        if _is_number(value) and key != "reembed_job" and not _is_history(key, value):
            out[metric_key(key)] = float(value)
    return out


def history_metrics(metrics: Mapping[str, Any]) -> Iterator[tuple[str, float, int]]:
    """(key, value, step) of every per-epoch history: a list of dicts ({"epoch": 1, "train_loss": ..}: step =
    epoch) or of numbers (loss_history: [..] -> "loss", step = position from 1)."""
    for key, value in metrics.items():
        if not _is_history(key, value):
            continue
        for position, entry in enumerate(value, 1):
            if isinstance(entry, Mapping):
                epoch = entry.get("epoch")
                step = int(epoch) if _is_number(epoch) else position
                for name, figure in entry.items():
                    if name != "epoch" and _is_number(figure):
                        yield metric_key(name), float(figure), step
            elif _is_number(entry):
                yield metric_key(key.removesuffix("_history") or key), float(entry), position


def run_name(job: Mapping[str, Any]) -> str:
    """``train words@3 (job 12)``: the kind, the model version (or the name it was to train), the job."""
    model = job.get("model") or (job.get("params") or {}).get("model")
    return f"{job['kind']} {model} (job {job['id']})" if model else f"{job['kind']} (job {job['id']})"


def run_tags(job: Mapping[str, Any], database: str, limit: int) -> dict[str, str]:
    """The vectorkeep.* tags of a job's run (its snapshot: the data it read, as JSON)."""
    tags = {
        JOB_TAG: str(job["id"]),
        "vectorkeep.job_kind": job["kind"],
        "vectorkeep.status": job["status"],
        DATABASE_TAG: database,
        "vectorkeep.collection": job.get("collection"),
        "vectorkeep.model": job.get("model"),
        "vectorkeep.model_kind": job.get("model_kind"),
        "vectorkeep.artifact_sha256": job.get("artifact_sha256"),
        "vectorkeep.snapshot": json.dumps(job["snapshot"], sort_keys=True, default=str)
        if job.get("snapshot")
        else None,
        "vectorkeep.worker": job.get("worker"),
        "vectorkeep.reembed_job": (job.get("metrics") or {}).get("reembed_job"),
    }
    return {key: str(value)[:limit] for key, value in tags.items() if value is not None}


def _millis(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def database_label(url: str) -> str:
    """host/dbname of a database, as the server reports them (never a user or a password)."""
    with connect(url) as conn:
        return f"{conn.info.host}/{conn.info.dbname}"


def _read_jobs(url: str, job_ids: Sequence[int] | None) -> list[dict[str, Any]]:
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("jobs_for_export"), {"ids": None if job_ids is None else list(job_ids)}).fetchall()
    if job_ids is not None:
        found = {row["id"]: row for row in rows}
        missing = sorted(set(job_ids) - set(found))
        if missing:
            # A job over a table this role may not read is hidden from it: the same answer as none.
            raise LookupError(
                f"no job {', '.join(map(str, missing))} that this role may read "
                "(jobs over tables it may not SELECT are shown to vk_worker and vk_admin members only)"
            )
        running = [f"job {row['id']} is {row['status']}" for row in rows if row["status"] not in FINISHED]
        if running:
            raise ValueError(f"only finished jobs are exported: {', '.join(running)}")
    return rows


class _Exporter:
    """One experiment of one tracking server; writes a job's run unless an earlier export did."""

    def __init__(self, mlflow: Any, tracking_uri: str | None, experiment: str, database: str) -> None:
        from mlflow.utils import validation

        self.mlflow = mlflow
        self.client = mlflow.tracking.MlflowClient(tracking_uri=tracking_uri)
        self.database = database
        self.param_limit = int(getattr(validation, "MAX_PARAM_VAL_LENGTH", 500))
        self.tag_limit = int(getattr(validation, "MAX_TAG_VAL_LENGTH", 5000))
        found = self.client.get_experiment_by_name(experiment)
        if found is not None and found.lifecycle_stage == "deleted":
            raise ValueError(f"MLflow experiment {experiment!r} is deleted: restore it or export to another one")
        self.experiment_id = str(
            found.experiment_id if found is not None else self.client.create_experiment(experiment)
        )

    def earlier_run(self, job_id: int) -> Any:
        """The run an earlier export made of this job of this database, if any (one cut short is deleted)."""
        runs = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{JOB_TAG}` = '{job_id}'")
        for run in runs:
            if run.data.tags.get(DATABASE_TAG) != self.database:
                continue
            if run.info.status == "RUNNING":  # an export that stopped half-way: write it again
                log.warning("job %d: deleting MLflow run %s, an export cut short", job_id, run.info.run_id)
                self.client.delete_run(run.info.run_id)
                continue
            return run
        return None

    def export(self, job: Mapping[str, Any]) -> ExportResult:
        name = run_name(job)
        earlier = self.earlier_run(job["id"])
        if earlier is not None:
            log.info("job %d: already in MLflow (run %s), skipped", job["id"], earlier.info.run_id)
            return ExportResult(job["id"], earlier.info.run_id, name, created=False)
        entities = self.mlflow.entities
        start = _millis(job["started_at"] or job["created_at"])
        end = _millis(job["finished_at"]) or start
        params = [
            entities.Param(metric_key(k), param_value(v, self.param_limit))
            for k, v in flat_params(job.get("params") or {}).items()
        ]
        model_metrics, job_metrics = job.get("model_metrics") or {}, job.get("metrics") or {}
        history = list(history_metrics(job_metrics)) or list(history_metrics(model_metrics))
        stepped = {key for key, _, _ in history}
        scalars = {**scalar_metrics(model_metrics), **scalar_metrics(job_metrics)}
        # What an encoder behind an API used for the job (vk.api_usage): api.requests, api.tokens, ...
        scalars.update(scalar_metrics({"api": job.get("api_usage") or {}}))
        metrics = [entities.Metric(k, v, end, 0) for k, v in scalars.items() if k not in stepped]
        metrics += [entities.Metric(k, v, end, step) for k, v, step in history]

        run = self.client.create_run(
            self.experiment_id, start_time=start, tags=run_tags(job, self.database, self.tag_limit), run_name=name
        )
        run_id = run.info.run_id
        for i in range(0, len(params), _PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=params[i : i + _PARAMS_PER_BATCH])
        for i in range(0, len(metrics), _METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=metrics[i : i + _METRICS_PER_BATCH])
        if job.get("error"):
            self.client.log_text(run_id, job["error"], "error.txt")
        if job.get("log_tail"):
            self.client.log_text(run_id, job["log_tail"], "log_tail.txt")
        # Last: a run is RUNNING until here, which tells a later export that this one stopped half-way.
        self.client.set_terminated(run_id, status=RUN_STATUS[job["status"]], end_time=end)
        log.info("job %d: MLflow run %s (%s) created", job["id"], run_id, name)
        return ExportResult(job["id"], run_id, name, created=True)


def export_jobs(
    url: str, tracking_uri: str | None = None, experiment: str = "vectorkeep", job_ids: list[int] | None = None
) -> list[ExportResult]:
    """Write each finished job (succeeded, failed or cancelled) as one MLflow run; all of them, or those of job_ids
    (each must exist and have finished). tracking_uri None: MLflow's default ($MLFLOW_TRACKING_URI, else its own).

    A run: named ``train words@3 (job 12)``; params: the job's params (nested ones as dotted keys); metrics: the
    numeric figures of the job and, for the job that trained it, of the model version (``recall@10`` as
    ``recall_at_10``) and what an encoder behind an API used for it (``api.requests``, ``api.tokens``, ...),
    per-epoch histories (``loss_history``) with step = epoch; tags ``vectorkeep.*`` (job id,
    kind, status, collection, model, model kind, artifact sha256, snapshot, database as host/dbname); the job's
    start and end times; status FINISHED, FAILED or KILLED; the error and the log tail as text artifacts.
    A job exported before (a run with its job id and database tags) is skipped: exporting twice adds nothing.
    Only the jobs the connecting role may read are exported (see the module's docstring).
    """
    mlflow = require_mlflow()
    jobs = _read_jobs(url, job_ids)
    if not jobs:
        return []
    exporter = _Exporter(mlflow, tracking_uri, experiment, database_label(url))
    return [exporter.export(job) for job in jobs]
