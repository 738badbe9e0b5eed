"""Finished jobs as MLflow runs (the `mlflow` extra): params, metrics, per-epoch history, tags, artifacts,
and a second export that adds nothing; through the application layer and the command line.

MLflow 3 refuses a file store (``file:///...``) unless MLFLOW_ALLOW_FILE_STORE is set, so the tests write to
a tracking store in SQLite (``sqlite:///<tmp>/mlflow.db``; one for the module, an experiment a test), its
artifacts under the same tmp folder.
"""

import itertools
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from helpers import drain, one, serve
from vectorkeep.app import mlflow_export
from vectorkeep.cli import main
from vectorkeep.db.connect import connect
from vectorkeep.workers.corpus import paragraphs
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.jobs.runner import JobContext, JobOutcome, JobRunner

pytest.importorskip("mlflow", reason="pip install -e '.[test]' (mlflow-skinny)")
from mlflow.tracking import MlflowClient

# MLflow's SQLite store under SQLAlchemy 2.1.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")

ROWS = 48
# Tiny: three one-batch epochs of a small network over 48 paragraphs.
MLP_PARAMS = {"epochs": 3, "hidden": [16], "max_features": 256}


def fail(ctx: JobContext) -> JobOutcome:
    logging.getLogger(__name__).info("about to fail")
    raise RuntimeError("the data centre is on fire")


@dataclass(frozen=True)
class Finished:
    """A database whose jobs all ended: a train job (and the re-embed it queued), a failed and a cancelled one."""

    url: str
    trained: int
    reembed: int
    failed: int
    cancelled: int

    @property
    def all(self) -> list[int]:
        return sorted([self.trained, self.reembed, self.failed, self.cancelled])


@pytest.fixture(scope="module")
def finished(server_url: str, template_url: str, encoders: EncoderCache) -> Iterator[Finished]:
    """Built once for the module: the exports only read the database."""
    from conftest import TEMPLATE, drop_database, fresh_database

    name, url = fresh_database(server_url, TEMPLATE)
    try:
        with connect(url, autocommit=True) as conn:
            texts = [(text,) for _, text in itertools.islice(paragraphs(), ROWS)]
            conn.cursor().executemany("INSERT INTO vk.documents (body) VALUES (%s)", texts)
            drain(url, encoders)  # the teacher's (minilm@1) vectors the MLP learns from
            cancelled = one(conn, "SELECT vk.train('later', 'tfidf', '{}', collection => 'documents')")
            conn.execute("SELECT vk.cancel_job(%s)", (cancelled,))
            trained = one(
                conn, "SELECT vk.train('words', 'tfidf-mlp', %s, collection => 'documents')", (Jsonb(MLP_PARAMS),)
            )
            serve(url, encoders)
            failed = one(
                conn, "SELECT vk.train('broken', 'tfidf', %s, collection => 'documents')", (Jsonb({"dim": 8}),)
            )
            JobRunner(url, handlers={"train": fail}).run(until_idle=True)
            reembed = one(conn, "SELECT (metrics ->> 'reembed_job')::bigint FROM vk.jobs WHERE id = %s", (trained,))
            statuses = dict(conn.execute("SELECT id, status FROM vk.jobs").fetchall())
        assert statuses == {trained: "succeeded", reembed: "succeeded", failed: "failed", cancelled: "cancelled"}
        yield Finished(url, trained, reembed, failed, cancelled)
    finally:
        drop_database(server_url, name)


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tracking store for the module (each test exports to experiments of its own); run artifacts land
    in the same tmp folder (./mlruns)."""
    folder = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield f"sqlite:///{folder / 'mlflow.db'}"


def runs_by_job(client: MlflowClient, experiment: str) -> dict[int, Any]:
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    runs = client.search_runs([found.experiment_id])
    by_job = {int(run.data.tags[mlflow_export.JOB_TAG]): run for run in runs}
    assert len(by_job) == len(runs), "two runs of one job"
    return by_job


def job_row(url: str, job_id: int) -> dict[str, Any]:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT j.params, j.metrics, j.snapshot, j.error, j.started_at, j.finished_at, "
            "m.params ->> 'artifact_sha256', current_database() FROM vk.jobs j "
            "LEFT JOIN vk.models m ON m.id = j.model_id WHERE j.id = %s",
            (job_id,),
        ).fetchone()
    assert row is not None
    keys = ("params", "metrics", "snapshot", "error", "started_at", "finished_at", "artifact_sha256", "dbname")
    return dict(zip(keys, row, strict=True))


def test_each_finished_job_is_one_run_and_a_second_export_adds_nothing(
    finished: Finished, tracking: str, tmp_path: Path
) -> None:
    results = mlflow_export.export_jobs(finished.url, tracking, "vk-test")
    assert [r.job_id for r in results] == finished.all and all(r.created for r in results)

    client = MlflowClient(tracking_uri=tracking)
    runs = runs_by_job(client, "vk-test")
    assert sorted(runs) == finished.all

    # The train job: its params, its and its version's metrics, the loss per epoch, its tags and times.
    job = job_row(finished.url, finished.trained)
    run = runs[finished.trained]
    assert run.info.run_name == f"train words@1 (job {finished.trained})"
    assert run.info.status == "FINISHED"
    assert run.info.start_time == int(job["started_at"].timestamp() * 1000)
    assert run.info.end_time == int(job["finished_at"].timestamp() * 1000)
    params = run.data.params
    assert params["model"] == "words" and params["kind"] == "tfidf-mlp"
    assert params["params.epochs"] == "3" and json.loads(params["params.hidden"]) == [16]
    metrics = run.data.metrics  # the job's and its version's figures; recall@10 as recall_at_10
    assert metrics["recall_at_10"] == pytest.approx(job["metrics"]["recall@10"])
    assert metrics["vocabulary"] == job["metrics"]["vocabulary"] and "reembed_job" not in metrics
    history = job["metrics"]["loss_history"]
    assert len(history) == 3
    for key in ("train_loss", "val_loss"):
        logged = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        assert logged == [(h["epoch"], pytest.approx(h[key])) for h in history]
    tags = run.data.tags
    assert job["artifact_sha256"] and tags["vectorkeep.artifact_sha256"] == job["artifact_sha256"]
    assert tags["vectorkeep.job_id"] == str(finished.trained) and tags["vectorkeep.job_kind"] == "train"
    assert tags["vectorkeep.status"] == "succeeded" and tags["vectorkeep.collection"] == "documents"
    assert tags["vectorkeep.model"] == "words@1" and tags["vectorkeep.model_kind"] == "tfidf-mlp"
    assert json.loads(tags["vectorkeep.snapshot"]) == job["snapshot"] and job["snapshot"]["rows"] == ROWS
    database = tags["vectorkeep.database"]
    assert database.endswith(f"/{job['dbname']}") and "@" not in database and "password" not in database
    assert tags["vectorkeep.reembed_job"] == str(finished.reembed)
    log_tail = Path(client.download_artifacts(run.info.run_id, "log_tail.txt", str(tmp_path))).read_text()
    assert "train words" in log_tail

    # The re-embed it queued: the same version, none of the version's training figures.
    run = runs[finished.reembed]
    assert run.info.run_name == f"reembed words@1 (job {finished.reembed})" and run.info.status == "FINISHED"
    assert "train_loss" not in run.data.metrics and run.data.tags["vectorkeep.job_kind"] == "reembed"

    # A failed job: FAILED, with its error as a text artifact; a cancelled one: KILLED.
    job = job_row(finished.url, finished.failed)
    run = runs[finished.failed]
    assert run.info.status == "FAILED" and run.data.tags["vectorkeep.status"] == "failed"
    assert run.info.run_name == f"train broken (job {finished.failed})"  # no version reserved: the name
    assert run.data.params["params.dim"] == "8"
    error = Path(client.download_artifacts(run.info.run_id, "error.txt", str(tmp_path))).read_text()
    assert "on fire" in job["error"] and error == job["error"]
    run = runs[finished.cancelled]
    assert run.info.status == "KILLED" and run.info.run_name.startswith("train later")

    # Idempotent: found again, nothing new; one job asked for by id, the same.
    again = mlflow_export.export_jobs(finished.url, tracking, "vk-test")
    assert [(r.job_id, r.run_id) for r in again] == [(r.job_id, r.run_id) for r in results]
    assert not any(r.created for r in again)
    assert [r.created for r in mlflow_export.export_jobs(finished.url, tracking, "vk-test", [finished.failed])] == [
        False
    ]
    assert sorted(runs_by_job(client, "vk-test")) == finished.all


def test_an_export_cut_short_is_written_again(finished: Finished, tracking: str) -> None:
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.create_experiment("vk-cut")
    database = mlflow_export.database_label(finished.url)
    tags = {mlflow_export.JOB_TAG: str(finished.failed), mlflow_export.DATABASE_TAG: database}
    half = client.create_run(experiment, tags=tags).info.run_id  # never terminated: RUNNING
    # The same job id from another database is another job.
    other = {mlflow_export.JOB_TAG: str(finished.failed), mlflow_export.DATABASE_TAG: "elsewhere/db"}
    client.set_terminated(client.create_run(experiment, tags=other).info.run_id)

    [result] = mlflow_export.export_jobs(finished.url, tracking, "vk-cut", [finished.failed])
    assert result.created and result.run_id != half
    assert client.get_run(half).info.lifecycle_stage == "deleted"
    assert client.get_run(result.run_id).info.status == "FAILED"


def test_only_finished_jobs_that_exist(finished: Finished, tracking: str) -> None:
    with pytest.raises(LookupError, match="no job 999999"):
        mlflow_export.export_jobs(finished.url, tracking, job_ids=[finished.trained, 999999])
    with connect(finished.url, autocommit=True) as conn:
        queued = one(conn, "SELECT vk.train('queued', 'tfidf', '{}', collection => 'documents')")
        try:
            with pytest.raises(ValueError, match=f"job {queued} is queued"):
                mlflow_export.export_jobs(finished.url, tracking, job_ids=[queued])
        finally:
            conn.execute("SELECT vk.cancel_job(%s)", (queued,))
            conn.execute("DELETE FROM vk.jobs WHERE id = %s", (queued,))


def test_without_mlflow_says_how_to_install_it(
    finished: Finished, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    with pytest.raises(mlflow_export.MlflowNotInstalled, match=r"pip install 'vectorkeep\[mlflow\]'"):
        mlflow_export.export_jobs(finished.url)
    assert main(["--database-url", finished.url, "jobs", "export-mlflow"]) == 1
    assert "pip install 'vectorkeep[mlflow]'" in capsys.readouterr().err


def test_command_line(finished: Finished, tracking: str, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--database-url", finished.url]
    # As jobs end: the train job, then the re-embed it queued (both over already: exported at once).
    assert main([*db, "jobs", "wait", str(finished.trained), "--export-mlflow", tracking, "--json"]) == 0
    json.loads(capsys.readouterr().out)  # the output of `jobs wait --json`, unchanged
    client = MlflowClient(tracking_uri=tracking)
    assert sorted(runs_by_job(client, "vectorkeep")) == [finished.trained, finished.reembed]

    assert main([*db, "jobs", "export-mlflow", "--tracking-uri", tracking, "--json"]) == 0
    [summary] = json.loads(capsys.readouterr().out)
    assert (summary["created"], summary["skipped"], summary["experiment"]) == (2, 2, "vectorkeep")
    assert {run["job"]: run["created"] for run in summary["runs"]} == {
        finished.trained: False,
        finished.reembed: False,
        finished.failed: True,
        finished.cancelled: True,
    }
    assert sorted(runs_by_job(client, "vectorkeep")) == finished.all

    args = [*db, "jobs", "export-mlflow", "--tracking-uri", tracking, "--job", str(finished.failed)]
    assert main([*args, "--experiment", "other"]) == 0
    out = capsys.readouterr().out
    assert out.split("\n")[0].split() == ["created", "skipped", "experiment"]
    assert out.split("\n")[2].split() == ["1", "0", "other"]
    assert sorted(runs_by_job(client, "other")) == [finished.failed]
