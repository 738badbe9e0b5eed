"""Versioned models: train jobs, re-embedding, activation with gates, retirement, safety."""

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from helpers import FAST_RETRY, assert_invariant, cli, one, serve, wait_for
from vectorkeep.db import registry
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.jobs import HANDLERS
from vectorkeep.workers.jobs.runner import JobRunner
from vectorkeep.workers.worker import Worker, WorkerSettings


def job(conn: psycopg.Connection, job_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM vk.jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return row


def vectors_complete(conn: psycopg.Connection, model: str) -> bool:
    return bool(
        one(
            conn,
            "SELECT current = texts AND queued = 0 FROM vk._coverage(vk._collection('documents'), vk.model(%s))",
            (model,),
        )
    )


def first_half(text: str) -> str:
    words = text.split()
    return " ".join(words[: len(words) // 2])


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("tfidf", {"dim": 64, "reduce": "svd"}),
        ("tfidf", {"dim": 32, "reduce": "pca"}),
        ("doc2vec", {"vector_size": 48, "epochs": 30}),
        ("tfidf-mlp", {"epochs": 40, "lr": 0.003}),
    ],
)
def test_train_reembed_activate_search(
    corpus_url: str, encoders: EncoderCache, kind: str, params: dict[str, Any]
) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        train_id = one(conn, "SELECT vk.train('mine', %s, %s, 'documents')", (kind, Jsonb(params)))
        ran = serve(corpus_url, encoders)
        train = job(conn, train_id)
        assert train["status"] == "succeeded", train["error"]
        reembed_id = train["metrics"]["reembed_job"]
        assert ran == [train_id, reembed_id]

        # The run history: params, data snapshot, metrics, the version produced, the log.
        assert train["params"]["kind"] == kind
        assert train["snapshot"]["rows"] == 400 and train["snapshot"]["collection"] == "documents"
        assert 0.0 <= train["metrics"]["recall@10"] <= 1.0 and "agreement@10" in train["metrics"]
        assert train["log_tail"] and "train mine" in train["log_tail"]
        model = registry.by_id(conn, train["model_id"])
        assert (model.label, model.kind, model.status) == ("mine@1", kind, "ready")
        assert model.fingerprint is not None and model.params["artifact_sha256"]
        assert one(conn, "SELECT trained_by_job FROM vk.models WHERE id = %s", (model.id,)) == train_id
        assert job(conn, reembed_id)["status"] == "succeeded"
        assert vectors_complete(conn, "mine@1")

        one(conn, "SELECT activated FROM vk.activate('documents', 'mine@1')")
        assert registry.by_id(conn, model.id).status == "active"
        assert registry.by_spec(conn, "minilm@1").status == "ready"  # still queryable by name@version

        # Sensible neighbours: half of a stored paragraph finds the paragraph.
        texts = conn.execute("SELECT id::text, body FROM vk.documents ORDER BY id LIMIT 40").fetchall()
        encoder = EncoderCache().get(conn, model)
        found = 0
        for pk, body in texts:
            query = encoder.encode([first_half(body)])[0]
            hits = [r[0] for r in conn.execute("SELECT pk FROM vk.search('documents', %s, 10)", (query,))]
            found += pk in hits
        assert found >= 20, f"{kind}: only {found} of 40 paragraphs found from their first half"
        n = one(conn, "SELECT count(*) FROM vk.search('documents', %s, 5, 'minilm@1')", (np.ones(384) / 20,))
        assert n == 5


def test_doc2vec_inference_is_deterministic(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute(
            "SELECT vk.train('d2v', 'doc2vec', '{\"vector_size\": 16, \"epochs\": 5}', collection => 'documents')"
        )
        serve(corpus_url, encoders)
        model = registry.by_spec(conn, "d2v@1")
        a, b = EncoderCache().get(conn, model), EncoderCache().get(conn, model)
        texts = ["the same text twice", "another one"]
        assert np.array_equal(a.encode(texts), a.encode(texts))
        assert np.array_equal(a.encode(texts), b.encode(texts))


def test_activation_is_refused_until_complete_and_gates_pass(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute("SELECT vk.train('gated', 'tfidf', '{\"dim\": 16}', collection => 'documents')")
        # Train only: its reembed job is left queued, so its vectors are not there yet.
        runner = JobRunner(corpus_url, handlers={"train": HANDLERS["train"]})
        runner.run(until_idle=True)
        with pytest.raises(errors.ObjectNotInPrerequisiteState, match=r"not complete for \"documents\": 0 of 400"):
            conn.execute("SELECT vk.activate('documents', 'gated@1')")
        serve(corpus_url, encoders)
        recall = one(conn, "SELECT (metrics ->> 'recall@10')::float8 FROM vk.models WHERE name = 'gated'")
        with pytest.raises(errors.CheckViolation, match="fails its gate: recall@10"):
            conn.execute(
                "SELECT vk.activate('documents', 'gated@1', %s)",
                (Jsonb({"recall@10": recall + 0.01}),),
            )
        with pytest.raises(errors.CheckViolation, match='has no metric "bleu"'):
            conn.execute("SELECT vk.activate('documents', 'gated@1', '{\"bleu\": 0.1}')")
        assert (
            one(conn, "SELECT vk.model_label(m) FROM vk.collections c JOIN vk.models m ON m.id = c.default_model_id")
            == "minilm@1"
        )
        one(conn, "SELECT vk.activate('documents', 'gated@1', %s)", (Jsonb({"recall@10": recall}),))
        assert (
            one(conn, "SELECT vk.model_label(m) FROM vk.collections c JOIN vk.models m ON m.id = c.default_model_id")
            == "gated@1"
        )


def test_train_can_activate_after_reembed(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute(
            "SELECT vk.train('auto', 'tfidf', '{\"dim\": 16, \"activate\": {\"recall@10\": 0.0}}', 'documents')"
        )
        conn.execute(
            "SELECT vk.train('never', 'tfidf', '{\"dim\": 16, \"activate\": {\"recall@10\": 1.01}}', 'documents')"
        )
        serve(corpus_url, encoders)
        metrics = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT vk.model_label(m), j.metrics FROM vk.jobs j "
                "JOIN vk.models m ON m.id = j.model_id WHERE j.kind = 'reembed'"
            )
        }
        assert metrics["auto@1"]["activated"] is True
        assert metrics["never@1"]["activated"] is False
        assert "fails its gate" in metrics["never@1"]["activation_refused"]
        assert one(conn, "SELECT status FROM vk.models WHERE name = 'auto'") == "active"


def test_retire_removes_vectors_and_index(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute("SELECT vk.train('old', 'tfidf', '{\"dim\": 16}', collection => 'documents')")
        serve(corpus_url, encoders)
        index = one(conn, "SELECT index_name FROM vk.collection_models WHERE model_id = (vk.model('old@1')).id")
        assert one(conn, "SELECT to_regclass(%s)", (f"vk.{index}",)) is not None
        with pytest.raises(errors.ObjectNotInPrerequisiteState, match="search default"):
            conn.execute("SELECT vk.retire('minilm@1')")
        # Vectors come back only by re-embedding: said, and nothing deleted, until confirmed.
        with pytest.raises(
            errors.ObjectNotInPrerequisiteState, match="deletes its 400 vectors in every collection"
        ) as asked:
            conn.execute("SELECT vk.retire('old@1')")
        assert "SELECT vk.retire('old@1', confirm => true);" in (asked.value.diag.message_hint or "")
        assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE model_id = (vk.model('old@1')).id") == 400
        assert one(conn, "SELECT vk.retire('old@1', confirm => true)") == 400
        assert one(conn, "SELECT to_regclass(%s)", (f"vk.{index}",)) is None
        assert one(conn, "SELECT status FROM vk.models WHERE name = 'old'") == "retired"
        with pytest.raises(errors.ObjectNotInPrerequisiteState, match="not embedded with model old@1"):
            conn.execute("SELECT * FROM vk.search('documents', %s, 5, 'old@1')", (np.ones(16),))
        with pytest.raises(errors.ObjectNotInPrerequisiteState, match=r"old@1 is not ready \(status retired\)"):
            conn.execute("SELECT * FROM vk.recover(%s, 'old@1')", (np.ones(16),))


def test_a_dead_trainer_is_taken_over_after_its_lease(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        train_id = one(
            conn,
            "SELECT vk.train('slow', 'doc2vec', '{\"vector_size\": 32, \"epochs\": 400}', collection => 'documents')",
        )
        trainer = subprocess.Popen(
            [sys.executable, "-m", "vectorkeep", "worker", "--jobs-only", "--lease", "2"],
            env={**os.environ, "VECTORKEEP_DATABASE_URL": corpus_url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: job(conn, train_id)["model_id"] is not None, 120, "the trainer to start")
        finally:
            trainer.send_signal(signal.SIGKILL)
            trainer.wait(timeout=30)
        dead = job(conn, train_id)
        assert (dead["status"], dead["attempts"]) == ("running", 1)
        reserved = dead["model_id"]
        assert one(conn, "SELECT status FROM vk.models WHERE id = %s", (reserved,)) == "training"

        time.sleep(2.5)  # the dead worker's lease expires
        conn.execute("UPDATE vk.jobs SET params = jsonb_set(params, '{params,epochs}', '5') WHERE id = %s", (train_id,))
        serve(corpus_url, encoders)
        done = job(conn, train_id)
        assert (done["status"], done["attempts"]) == ("succeeded", 2)
        assert done["worker"] != dead["worker"]
        # The takeover trained the version the first attempt had reserved.
        assert done["model_id"] == reserved
        assert one(conn, "SELECT vk.model_label(m) FROM vk.models m WHERE id = %s", (reserved,)) == "slow@1"
        assert_invariant(conn)


def test_interrupted_reembed_resumes_and_embeds_each_row_once(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vk.models (name, version, kind, dim, params) VALUES "
            "('mini2', 1, 'sentence-transformers', 384, '{\"source\": \"sentence-transformers/all-MiniLM-L6-v2\"}')"
        )
        reembed_id = one(conn, "SELECT vk.reembed('documents', 'mini2@1')")
        conn.execute("UPDATE vk.jobs SET params = '{\"page_size\": 40}' WHERE id = %s", (reembed_id,))

        embedded: list[int] = []
        worker = Worker(
            corpus_url,
            WorkerSettings(batch_size=16, retry=FAST_RETRY),
            encoders=encoders,
            on_batch=lambda b: embedded.append(b.embedded),
        )
        queue = threading.Thread(target=worker.run, daemon=True)
        queue.start()
        runner = JobRunner(corpus_url, lease_seconds=5)
        jobs = threading.Thread(target=runner.run, daemon=True)
        jobs.start()
        wait_for(
            lambda: (job(conn, reembed_id)["progress"] or {}).get("scanned", 0) >= 120, 120, "a third of the pages"
        )
        runner.stop()  # the worker stops: the job is handed back with its progress
        jobs.join(timeout=60)
        handed_back = job(conn, reembed_id)
        assert handed_back["status"] == "queued"
        assert 120 <= handed_back["progress"]["scanned"] < 400
        # Rows inserted while it is interrupted are not missed.
        conn.execute("INSERT INTO vk.documents (body) VALUES ('a row written during the backfill')")

        runner = JobRunner(corpus_url, lease_seconds=5)
        runner.run(until_idle=True)
        worker.stop()
        queue.join(timeout=60)
        Worker(
            corpus_url,
            WorkerSettings(retry=FAST_RETRY),
            encoders=encoders,
            on_batch=lambda b: embedded.append(b.embedded),
        ).run(until_idle=True)

        done = job(conn, reembed_id)
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] == 1  # handed back, not failed: the resumed run is the same attempt
        # Each of the 401 rows was encoded once for mini2 (plus once for minilm@1: the new row).
        assert sum(embedded) == 401 + 1
        assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE model_id = (vk.model('mini2@1')).id") == 401
        assert vectors_complete(conn, "mini2@1")


def test_tampered_artifact_is_refused(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute("SELECT vk.train('tampered', 'tfidf', '{\"dim\": 16}', collection => 'documents')")
        JobRunner(corpus_url, handlers={"train": HANDLERS["train"]}).run(until_idle=True)
        # Even with the stored hash rewritten to match, the hash recorded at training refuses it.
        conn.execute(
            "UPDATE vk.model_artifacts SET data = data || '\\x00'::bytea, sha256 = sha256(data || '\\x00'::bytea)"
        )
        serve(corpus_url, encoders)
        reembed = job(conn, one(conn, "SELECT id FROM vk.jobs WHERE kind = 'reembed'"))
        assert reembed["status"] == "failed"
        assert "fails its sha256 check" in reembed["error"]
        assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE model_id = (vk.model('tampered@1')).id") == 0
        assert one(conn, "SELECT count(*) FROM vk.queue") == 0


def test_train_arguments_are_checked(conn: psycopg.Connection) -> None:
    with pytest.raises(errors.InvalidParameterValue, match="unknown model kind 'bert'"):
        conn.execute("SELECT vk.train('x', 'bert', collection => 'documents')")
    with pytest.raises(errors.InvalidParameterValue, match="bad model name"):
        conn.execute("SELECT vk.train('x@2', 'tfidf', collection => 'documents')")
    with pytest.raises(errors.UndefinedObject, match="unknown collection"):
        conn.execute("SELECT vk.train('x', 'tfidf', '{}', 'nope')")


def test_a_failing_train_keeps_its_error_and_marks_the_version_failed(conn: psycopg.Connection, db_url: str) -> None:
    # vk.documents is empty: nothing to train on.
    train_id = one(conn, "SELECT vk.train('empty', 'tfidf', collection => 'documents')")
    JobRunner(db_url).run(until_idle=True)
    failed = job(conn, train_id)
    assert failed["status"] == "failed"
    assert "no text to train on" in failed["error"]
    assert one(conn, "SELECT status FROM vk.models WHERE name = 'empty'") == "failed"


def test_schedules_create_retrain_jobs(conn: psycopg.Connection) -> None:
    schedule = one(conn, "SELECT vk.schedule_train('nightly', 'tfidf', '1 day', collection => 'documents')")
    assert one(conn, "SELECT vk.run_due_schedules_v1()") == 1
    assert one(conn, "SELECT vk.run_due_schedules_v1()") == 0  # next run is a day away
    # Due again while its last job is still queued: no second job piles up.
    conn.execute("UPDATE vk.schedules SET next_run_at = now() - interval '1 minute' WHERE id = %s", (schedule,))
    assert one(conn, "SELECT vk.run_due_schedules_v1()") == 0
    conn.execute("UPDATE vk.jobs SET status = 'succeeded'")
    conn.execute("UPDATE vk.schedules SET next_run_at = now() - interval '1 minute' WHERE id = %s", (schedule,))
    assert one(conn, "SELECT vk.run_due_schedules_v1()") == 1
    assert one(conn, "SELECT count(*) FROM vk.jobs WHERE kind = 'train' AND schedule_id = %s", (schedule,)) == 2
    assert one(conn, "SELECT next_run_at > now() + interval '23 hours' FROM vk.schedules") is True


def test_hf_mean_pool_registered_encoder_matches_sentence_transformers(db_url: str, encoders: EncoderCache) -> None:
    from helpers import cli

    done = cli(
        db_url,
        "models",
        "register",
        "minihf",
        "--kind",
        "hf-mean-pool",
        "--source",
        "sentence-transformers/all-MiniLM-L6-v2",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    with connect(db_url, autocommit=True) as conn:
        hf = registry.by_spec(conn, "minihf@1")
        assert (hf.kind, hf.dim, hf.fingerprint is not None) == ("hf-mean-pool", 384, True)
        texts = ["Mean pooling of MiniLM is what sentence-transformers does.", "Another sentence."]
        mean_pooled = EncoderCache().get(conn, hf).encode(texts)
        reference = encoders.get(conn, registry.by_spec(conn, "minilm@1")).encode(texts)
    cosines = (mean_pooled * reference).sum(axis=1)
    assert np.all(cosines > 0.999), cosines


def test_reembed_with_a_changed_external_encoder_fails_with_the_reason(db_url: str, encoders: EncoderCache) -> None:
    with connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO vk.documents (body) VALUES ('one'), ('two')")
        # Registered under this name with another encoder's probe vector.
        conn.execute(
            "INSERT INTO vk.models (name, version, kind, dim, params, fingerprint) VALUES ('swapped', 1, "
            "'sentence-transformers', 384, '{\"source\": \"sentence-transformers/all-MiniLM-L6-v2\"}', %s)",
            (np.random.default_rng(3).standard_normal(384).astype(np.float32),),
        )
        reembed_id = one(conn, "SELECT vk.reembed('documents', 'swapped@1')")
        serve(db_url, encoders)
        failed = job(conn, reembed_id)
        assert failed["status"] == "failed"
        assert "not the one it was registered with" in failed["error"]
        assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE model_id = (vk.model('swapped@1')).id") == 0


def test_a_job_whose_workers_keep_dying_fails_with_the_reason(conn: psycopg.Connection) -> None:
    train_id = one(conn, "SELECT vk.train('doomed', 'tfidf', collection => 'documents')")
    conn.execute(
        "INSERT INTO vk.models (name, version, kind, dim, status, trained_by_job) "
        "VALUES ('doomed', 1, 'tfidf', 8, 'training', %s)",
        (train_id,),
    )
    conn.execute(
        "UPDATE vk.jobs SET model_id = (SELECT id FROM vk.models WHERE name = 'doomed') WHERE id = %s", (train_id,)
    )
    for attempt in range(1, 4):
        claimed = conn.execute("SELECT id, attempts FROM vk.claim_job_v1(%s, 0.05)", (f"doomed-{attempt}",))
        assert claimed.fetchall() == [(train_id, attempt)]
        time.sleep(0.1)  # dies: the lease expires unrenewed
    assert conn.execute("SELECT * FROM vk.claim_job_v1('next', 30)").fetchall() == []
    failed = job(conn, train_id)
    assert failed["status"] == "failed"
    assert "lease expired 3 times" in failed["error"] and "doomed-3" in failed["error"]
    assert one(conn, "SELECT status FROM vk.models WHERE name = 'doomed'") == "failed"


def test_a_job_is_cancelled_and_a_running_one_is_told_at_its_heartbeat(db_url: str) -> None:
    with connect(db_url, autocommit=True) as conn:
        queued = one(conn, "SELECT vk.reembed('documents', 'minilm@1')")
        running = one(conn, "SELECT vk.train('never', 'tfidf', collection => 'documents')")
        assert one(conn, "SELECT id FROM vk.claim_job_v1('w1', 30, ARRAY['train'])") == running
        conn.execute("SELECT vk.reserve_model_v1(%s, 'never', 'tfidf', '{}')", (running,))

        done = cli(db_url, "jobs", "cancel", str(queued), "--json")
        assert done.returncode == 0, done.stderr
        assert '"status": "cancelled"' in done.stdout
        assert one(conn, "SELECT status FROM vk.cancel_job(%s)", (running,)) == "cancelled"
        # The worker learns it at its next heartbeat, and no other worker takes the jobs.
        assert one(conn, "SELECT vk.heartbeat_job_v1(%s, 'w1', 30)", (running,)) is None
        assert conn.execute("SELECT * FROM vk.claim_job_v1('w2', 30)").fetchall() == []
        assert one(conn, "SELECT status FROM vk.models WHERE name = 'never'") == "failed"
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="cannot be cancelled"):
            conn.execute("SELECT vk.cancel_job(%s)", (running,))
        with pytest.raises(psycopg.errors.NoDataFound, match="no such job"):
            conn.execute("SELECT vk.cancel_job(999)")
