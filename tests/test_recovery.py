"""Recovery: adopt a vector-only table, recover its text by nearest stored text."""

import json
import os
import subprocess
import sys
from subprocess import PIPE
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import errors
from psycopg.rows import dict_row

from helpers import cli, one, serve, wait_for
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.jobs.runner import JobRunner

LEGACY = """
CREATE TABLE repo_info_pv_vec (id bigint PRIMARY KEY, vector vector(384));
INSERT INTO repo_info_pv_vec SELECT e.pk::bigint + 1000, e.embedding FROM vk.embeddings e
WHERE e.collection_id = (SELECT id FROM vk.collections WHERE name = 'documents');
"""


def recovered(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT r.*, d.body AS original FROM vk.recovered r "
            "LEFT JOIN vk.documents d ON d.id = r.pk::bigint - 1000 ORDER BY r.pk"
        ).fetchall()


def test_adopted_vectors_recover_their_exact_text_with_provenance(corpus_url: str) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute(LEGACY)
        adopted = conn.execute("SELECT * FROM vk.adopt('repo_info_pv_vec', 'id', 'vector', 'legacy')").fetchone()
        assert adopted is not None and adopted[:3] == ("repo_info_pv_vec", "legacy@1", 400)
        model_id = adopted[3]
        assert one(conn, "SELECT m.kind || ' ' || m.dim FROM vk.models m WHERE id = %s", (model_id,)) == "external 384"
        job_id = one(conn, "SELECT vk.recover_adopted('repo_info_pv_vec', 'nearest', 'minilm@1')")
        assert JobRunner(corpus_url).run(until_idle=True) == [job_id]

        rows = recovered(conn)
        assert len(rows) == 400
        for r in rows:
            # The reference corpus holds the original texts: nearest recovery is exact.
            assert r["body"] == r["original"]
            assert r["similarity"] == pytest.approx(1.0, abs=1e-4)
            assert (r["method"], r["source_collection"]) == ("nearest", "documents")
            assert int(r["source_pk"]) == int(r["pk"]) - 1000
            assert (r["model_id"], r["job_id"]) == (model_id, job_id)
            assert r["reference_model_id"] == one(conn, "SELECT (vk.model('minilm@1')).id")
        metrics = one(conn, "SELECT metrics FROM vk.jobs WHERE id = %s", (job_id,))
        assert (metrics["nearest"]["rows"], metrics["nearest"]["without_text"]) == (400, 0)
        # Recovered text is never taken for original text: the legacy table is no collection.
        with pytest.raises(errors.UndefinedObject):
            conn.execute("SELECT * FROM vk.search('repo_info_pv_vec', %s)", (np.ones(384),))


def test_a_named_encoder_proves_the_reference_by_fingerprint(corpus_url: str) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute(LEGACY)
    done = cli(
        corpus_url,
        "adopt",
        "repo_info_pv_vec",
        "--pk",
        "id",
        "--vector",
        "vector",
        "--model",
        "legacy",
        "--encoder",
        "sentence-transformers/all-MiniLM-L6-v2",
    )
    assert done.returncode == 0, done.stderr
    assert "its vectors are legacy@1" in done.stdout
    done = cli(corpus_url, "recover", "repo_info_pv_vec", "--json")
    assert done.returncode == 0, done.stderr
    assert JobRunner(corpus_url).run(until_idle=True) == [json.loads(done.stdout)[0]["job"]]
    with connect(corpus_url, autocommit=True) as conn:
        # No reference named: the fingerprint found minilm@1's corpus.
        assert (
            one(
                conn,
                "SELECT DISTINCT vk.model_label(m) FROM vk.recovered r JOIN vk.models m ON m.id = r.reference_model_id",
            )
            == "minilm@1"
        )
        assert all(r["body"] == r["original"] for r in recovered(conn))


def test_an_encoder_named_in_sql_lets_recovery_find_its_corpus(corpus_url: str) -> None:
    """vk.adopt(..., encoder => 'minilm@1') then vk.recover_adopted(name) with nothing else: the README's
    two lines, which failed with "no model version is known to share the space" when SQL had no way to
    name the encoder."""
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute(LEGACY)
        with pytest.raises(errors.InvalidParameterValue, match="minilm@1 makes 384-d vectors"):
            conn.execute("CREATE TABLE small (id int PRIMARY KEY, v vector(3))")
            conn.execute("INSERT INTO small VALUES (1, '[1,2,3]')")
            conn.execute("SELECT vk.adopt('small', 'id', 'v', 'small', encoder => 'minilm@1')")
        with pytest.raises(errors.UndefinedObject, match='unknown model "nope"'):
            conn.execute("SELECT vk.adopt('repo_info_pv_vec', 'id', 'vector', 'legacy', encoder => 'nope')")
        conn.execute("SELECT vk.adopt('repo_info_pv_vec', 'id', 'vector', 'legacy', encoder => 'minilm@1')")
        params = one(conn, "SELECT params FROM vk.models WHERE name = 'legacy'")
        assert params["encoder"] == "minilm@1" and params["encoder_vouched_by"]
        job_id = one(conn, "SELECT vk.recover_adopted('repo_info_pv_vec')")
        assert JobRunner(corpus_url).run(until_idle=True) == [job_id]
        assert one(conn, "SELECT status FROM vk.jobs WHERE id = %s", (job_id,)) == "succeeded"
        assert all(r["body"] == r["original"] for r in recovered(conn))


def test_an_encoder_that_does_not_match_is_refused(corpus_url: str) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute(LEGACY)
        conn.execute("SELECT vk.adopt('repo_info_pv_vec', 'id', 'vector', 'legacy')")
        with pytest.raises(
            errors.ObjectNotInPrerequisiteState, match="no model version is known to share the space"
        ) as e:
            conn.execute("SELECT vk.recover_adopted('repo_info_pv_vec')")
        assert "vk.recover_adopted('repo_info_pv_vec', reference => 'minilm@1')" in (e.value.diag.message_hint or "")
        other = np.random.default_rng(5).standard_normal(384).astype(np.float32)
        conn.execute("UPDATE vk.models SET fingerprint = %s WHERE name = 'legacy'", (other,))
        with pytest.raises(errors.InvalidParameterValue, match="is not the encoder of legacy@1"):
            conn.execute("SELECT vk.recover_adopted('repo_info_pv_vec', 'nearest', 'minilm@1')")
        with pytest.raises(errors.InvalidParameterValue, match="unknown recovery method"):
            conn.execute("SELECT vk.recover_adopted('repo_info_pv_vec', 'magic', 'minilm@1')")


def test_adopt_checks_the_vectors(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE mixed (id int PRIMARY KEY, v vector, t text)")
    conn.execute("INSERT INTO mixed VALUES (1, '[1,2,3]', 'x'), (2, '[1,2]', 'y')")
    with pytest.raises(errors.InvalidParameterValue, match="mixes dimensions 2 to 3"):
        conn.execute("SELECT vk.adopt('mixed', 'id', 'v', 'm')")
    with pytest.raises(errors.DatatypeMismatch, match="is text, not vector"):
        conn.execute("SELECT vk.adopt('mixed', 'id', 't', 'm')")
    with pytest.raises(errors.UndefinedColumn):
        conn.execute("SELECT vk.adopt('mixed', 'id', 'nope', 'm')")
    conn.execute("DELETE FROM mixed WHERE id = 2")
    conn.execute("SELECT vk.adopt('mixed', 'id', 'v', 'm')")
    assert one(conn, "SELECT dim FROM vk.models WHERE name = 'm'") == 3
    # A reference of another dimension cannot recover these vectors.
    with pytest.raises(errors.InvalidParameterValue, match="minilm@1 has 384 dimensions"):
        conn.execute("SELECT vk.recover_adopted('mixed', 'nearest', 'minilm@1')")
    with pytest.raises(errors.UndefinedObject, match='no adopted table "nope"'):
        conn.execute("SELECT vk.recover_adopted('nope')")


def evaluate_recovery_waited(url: str, encoders: EncoderCache, *args: str) -> subprocess.CompletedProcess[str]:
    """`vectorkeep evaluate-recovery --wait`, as a user runs it, while a worker here runs the job it queues."""
    env = {**os.environ, "VECTORKEEP_DATABASE_URL": url}
    command = [sys.executable, "-m", "vectorkeep", "evaluate-recovery", "--rows", "3", "--max-seconds", "0.2", *args]
    with subprocess.Popen([*command, "--wait"], env=env, stdout=PIPE, stderr=PIPE, text=True) as waiting:
        with connect(url, autocommit=True) as conn:
            queued = "SELECT count(*) FROM vk.jobs WHERE kind = 'evaluate' AND status = 'queued'"
            wait_for(lambda: waiting.poll() is not None or one(conn, queued) == 1, 60, "the evaluate job")
        job_ids = serve(url, encoders)
        stdout, stderr = waiting.communicate(timeout=120)
    assert len(job_ids) == 1 or waiting.returncode != 0, job_ids
    return subprocess.CompletedProcess(command, waiting.returncode, stdout, stderr)


def test_evaluate_recovery_wait_prints_each_methods_scores(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        train_id = one(
            conn,
            "SELECT vk.train('words', 'edit-search', '{\"epochs\": 2, \"seconds\": 0.2}', collection => 'documents')",
        )
    assert serve(corpus_url, encoders) == [train_id]

    # Three methods, each with its own figures (best has inverter_chosen, the others their model):
    # one table, the baseline first, a blank where a method has no such figure.
    done = evaluate_recovery_waited(corpus_url, encoders)
    assert done.returncode == 0, done.stderr
    header, _rule, *lines = done.stdout.splitlines()
    assert header.split()[:2] == ["method", "model"] and "inverter_chosen" in header.split()
    assert [line.split()[0] for line in lines] == ["nearest", "edit-search", "best"]
    assert lines[0].split()[1] == "minilm@1" and lines[1].split()[1] == "words@1"

    done = evaluate_recovery_waited(corpus_url, encoders, "--json")
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)
    assert [s["method"] for s in scores] == ["nearest", "edit-search", "best"]
    assert all(s["n"] == 3 and 0 <= s["mean_cosine"] <= 1 for s in scores)
    assert [s["model"] for s in scores] == ["minilm@1", "words@1", None]
    assert 0 <= scores[2]["inverter_chosen"] <= 1 and scores[0]["inverter_chosen"] is None
