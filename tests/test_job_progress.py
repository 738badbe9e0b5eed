"""Jobs an operator can follow: progress reported while they run (JobContext.report), cancellation
noticed within seconds, `vectorkeep jobs show` in full."""

import json
import threading
import time
from typing import Any

import psycopg
import pytest

from helpers import FAST_RETRY, background_worker, drain, one, wait_for
from vectorkeep.app import jobs
from vectorkeep.cli import main
from vectorkeep.cli.progress import JobBars, progress_text
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.jobs.runner import PROGRESS_SAVE_SECONDS, JobRunner
from vectorkeep.workers.worker import WorkerSettings

REPORTED = {"phase", "done", "total", "unit", "rate"}


def add_minilm_copy(conn: psycopg.Connection) -> None:
    """mini2@1: MiniLM under another name, so a reembed has every row of the corpus to embed."""
    conn.execute(
        "INSERT INTO vk.models (name, version, kind, dim, params) VALUES "
        "('mini2', 1, 'sentence-transformers', 384, '{\"source\": \"sentence-transformers/all-MiniLM-L6-v2\"}')"
    )


def reembed(conn: psycopg.Connection, model: str, page_size: int) -> int:
    job_id = int(one(conn, "SELECT vk.reembed('documents', %s)", (model,)))
    conn.execute("UPDATE vk.jobs SET params = %s WHERE id = %s", (json.dumps({"page_size": page_size}), job_id))
    return job_id


def state(conn: psycopg.Connection, job_id: int) -> tuple[str, dict[str, Any]]:
    row = conn.execute("SELECT status, progress FROM vk.jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return row[0], row[1] or {}


def test_a_reembed_reports_phase_done_total_and_rate_while_it_runs(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute("DELETE FROM vk.documents WHERE id > 200")  # a few hundred rows: enough pages, and quick
        add_minilm_copy(conn)
        job_id = reembed(conn, "mini2@1", 25)
        seen: list[dict[str, Any]] = []
        with background_worker(corpus_url, encoders, WorkerSettings(batch_size=16, retry=FAST_RETRY)):
            runner = JobRunner(corpus_url)
            thread = threading.Thread(target=runner.run, kwargs={"until_idle": True}, daemon=True)
            thread.start()
            deadline = time.monotonic() + 180
            # Polled from another connection while the job runs.
            while thread.is_alive() and time.monotonic() < deadline:
                status, progress = state(conn, job_id)
                if status == "running" and "done" in progress:
                    seen.append(progress)
                time.sleep(0.1)
            thread.join(timeout=5)
            assert not thread.is_alive(), "the reembed did not end"
        assert runner.finished == [job_id]

        assert seen, "no progress was saved while the job ran"
        assert all(set(p) >= REPORTED and p["unit"] == ("index" if p["phase"] == "indexing" else "rows") for p in seen)
        assert {p["phase"] for p in seen} <= {"queueing", "embedding", "indexing"} and seen[0]["phase"] == "queueing"
        assert all(0 <= p["done"] <= p["total"] for p in seen)
        assert all(isinstance(p["rate"], int | float) and p["rate"] >= 0 for p in seen)
        assert any(p["rate"] > 0 for p in seen)
        queueing = [p["done"] for p in seen if p["phase"] == "queueing"]
        assert queueing == sorted(queueing) and queueing[-1] > queueing[0], "rows queued did not grow"
        assert all(p["total"] == 200 for p in seen if p["phase"] == "queueing")

        status, progress = state(conn, job_id)
        assert status == "succeeded"
        # A version new to the collection: its HNSW index is built last, once.
        assert (progress["phase"], progress["done"], progress["total"], progress["unit"]) == ("indexing", 1, 1, "index")
        assert progress["scanned"] == 200 and progress["remaining"] == 0  # the resume position is kept beside


def test_a_cancelled_reembed_stops_within_seconds_and_the_runner_goes_on(corpus_url: str) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        add_minilm_copy(conn)
        # One page queues every row; with no queue worker running, the job then waits in its embedding phase.
        stuck = reembed(conn, "mini2@1", 1000)
        after = reembed(conn, "minilm@1", 1000)  # nothing to embed: ends at once, once the runner gets to it
        runner = JobRunner(corpus_url, poll_interval=0.2)
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        try:
            wait_for(lambda: state(conn, stuck)[1].get("phase") == "embedding", 60, "the embedding phase")
            embedding_since = time.monotonic()
            # Only the heartbeat saves what report() records in this phase (no save_progress): within seconds.
            wait_for(lambda: "done" in state(conn, stuck)[1], PROGRESS_SAVE_SECONDS + 3, "the reported counts")
            assert time.monotonic() - embedding_since < PROGRESS_SAVE_SECONDS + 3
            status, progress = state(conn, stuck)
            assert status == "running"
            assert (progress["done"], progress["total"], progress["unit"]) == (0, 400, "rows")

            assert one(conn, "SELECT status FROM vk.cancel_job(%s)", (stuck,)) == "cancelled"
            wait_for(lambda: state(conn, after)[0] == "succeeded", 60, "the next job to run")
            # The runner left the cancelled job at its next report: it claimed the next one within seconds.
            gap = one(
                conn,
                "SELECT extract(epoch FROM b.started_at - a.finished_at)::float8 "
                "FROM vk.jobs a, vk.jobs b WHERE a.id = %s AND b.id = %s",
                (stuck, after),
            )
            assert gap < PROGRESS_SAVE_SECONDS + 3, f"the cancelled job ran on for {gap:.1f}s"
            assert thread.is_alive(), "the runner stopped instead of going on"
            assert runner.finished == [after]
        finally:
            runner.stop()
            thread.join(timeout=30)
        assert not thread.is_alive()
        row = conn.execute("SELECT status, error, worker IS NOT NULL FROM vk.jobs WHERE id = %s", (stuck,)).fetchone()
        assert row == ("cancelled", None, True)  # not overwritten by the runner
        assert (
            one(conn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (f"vectorkeep job {stuck}",))
            == 0
        )


def test_jobs_show_prints_the_whole_job(
    db_url: str, encoders: EncoderCache, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO vk.documents (body) VALUES ('one row, embedded before the job')")
        drain(db_url, encoders)
        job_id = reembed(conn, "minilm@1", 40)  # 1 row read, none to queue
    assert JobRunner(db_url).run(until_idle=True) == [job_id]
    capsys.readouterr()

    assert main(["--database-url", db_url, "jobs", "show", str(job_id)]) == 0
    text = capsys.readouterr().out
    assert f"job {job_id}: reembed, succeeded" in text
    assert "documents" in text and "minilm@1" in text
    assert '"page_size": 40' in text  # params, pretty JSON
    for label in ("created", "started", "finished", "queued for", "ran for", "attempts", "worker"):
        assert f"\n  {label} " in text, label
    assert "\n  progress    embedding: 0/0 rows\n" in text
    assert "scanned=1" in text and "queued=0" in text  # the rest of the progress: the resume position
    assert "\n  scanned  1\n" in text.split("metrics:")[1]
    assert "\nlog:\n" in text and f"reembed {job_id}: 1 rows scanned, 0 queued for minilm@1" in text

    assert main(["--database-url", db_url, "jobs", "show", str(job_id), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)[0]
    assert (shown["id"], shown["kind"], shown["status"], shown["model"]) == (job_id, "reembed", "succeeded", "minilm@1")
    assert shown["params"] == {"page_size": 40}
    assert shown["progress"]["done"] == shown["progress"]["total"] == 0
    assert shown["metrics"]["scanned"] == 1 and shown["snapshot"]["rows"] == 1
    assert shown["queued_seconds"] >= 0 and shown["run_seconds"] > 0
    assert shown["created_at"] and shown["started_at"] and shown["finished_at"]
    assert f"job {job_id} succeeded" in shown["log_tail"]


def test_metrics_and_progress_read_for_people() -> None:
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": None} for e in range(1, 9)]
    summary = jobs.summarise_metrics(
        {"recall@10": 0.5, "loss_history": history, "nearest": {"bleu": 12.5, "exact": 0}, "seconds": 3}
    )
    assert summary == {
        "recall@10": 0.5,
        "loss_history": "8 epochs, last train_loss 0.125, val_loss None",
        "nearest.bleu": 12.5,
        "nearest.exact": 0,
        "seconds": 3,
    }
    assert jobs.summarise_metrics({"loss_history": [0.5, 0.25]}) == {"loss_history": "2 epochs, last 0.25"}

    assert progress_text({}) == ""
    assert progress_text({"phase": "training"}) == "training"
    assert progress_text({"phase": "embedding", "done": 100, "total": 400, "unit": "rows", "rate": 50.0}) == (
        "embedding: 100/400 rows (25%), 50 rows/s, eta 00:06"
    )
    assert progress_text({"phase": "recovering", "done": 7, "total": None, "unit": "rows", "rate": 0}) == (
        "recovering: 7 rows"
    )

    # One bar a job and phase, drawn from done/total (tqdm draws nothing here: stderr is no terminal).
    job: dict[str, Any] = {"id": 1, "kind": "reembed", "status": "running"}
    with JobBars(quiet=True) as bars:
        bars({**job, "progress": {"phase": "queueing", "done": 50, "total": 400, "unit": "rows", "rate": 10.0}})
        first = bars.bar
        assert first is not None and (first.n, first.total) == (50, 400)
        bars({**job, "progress": {"phase": "queueing", "done": 100, "total": 400, "unit": "rows", "rate": 10.0}})
        assert first.n == 100 and bars.bar is first
        bars({**job, "progress": {"phase": "embedding", "done": 0, "total": 350, "unit": "rows", "rate": 0.0}})
        second = bars.bar
        assert second is not None and second is not first and (second.n, second.total) == (0, 350)
        bars({**job, "id": 2, "kind": "train", "status": "queued", "progress": {}})
        assert bars.key == (2, "", "rows", "none")


def test_a_train_job_reports_its_epochs_and_a_cancel_fails_its_version(corpus_url: str) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        job_id = int(one(conn, """SELECT vk.train('mlp', 'tfidf-mlp', '{"epochs": 500}', collection => 'documents')"""))
        runner = JobRunner(corpus_url)
        thread = threading.Thread(target=runner.run, kwargs={"until_idle": True}, daemon=True)
        thread.start()
        wait_for(
            lambda: state(conn, job_id)[1].get("unit") == "epochs" and state(conn, job_id)[1]["done"] >= 1,
            120,
            "the train job's epochs in vk.jobs.progress",
        )
        status, progress = state(conn, job_id)
        assert (status, progress["phase"], progress["total"]) == ("running", "training", 500)
        assert progress["rate"] > 0
        one(conn, "SELECT vk.cancel_job(%s)", (job_id,))
        stopped = time.monotonic()
        thread.join(30)
        assert not thread.is_alive() and time.monotonic() - stopped < 15
        assert state(conn, job_id)[0] == "cancelled"
        assert one(conn, "SELECT status FROM vk.models WHERE name = 'mlp'") == "failed"
        assert one(conn, "SELECT count(*) FROM vk.model_artifacts") == 0
