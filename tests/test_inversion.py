"""vec2text inversion: a tiny inverter trained as a job, recovery with recorded cosine, evaluation."""

from typing import Any

import numpy as np
import pytest
from psycopg import errors
from psycopg.rows import dict_row

from helpers import FAST_RETRY, one
from vectorkeep.db import registry
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.service import Service
from vectorkeep.workers.worker import WorkerSettings

# Three stored rows' vectors, adopted as bare ones (every check below is row by row).
LEGACY = """
CREATE TABLE legacy_vectors (id bigint PRIMARY KEY, v vector(384));
INSERT INTO legacy_vectors SELECT e.pk::bigint, e.embedding FROM vk.embeddings e
WHERE e.collection_id = (SELECT id FROM vk.collections WHERE name = 'documents') ORDER BY e.pk::bigint LIMIT 3;
"""


# One epoch, on the first 16 tokens of each text (32 by default): the decoder's loss over its 30k-word vocabulary
# is most of a training step's cost on a CPU, and what is checked here asks the inverter to run, not to be good.
TINY = '{"epochs": 1, "batch_size": 32, "max_length": 16}'


def serve(url: str, encoders: EncoderCache) -> list[int]:
    return Service(url, WorkerSettings(retry=FAST_RETRY), encoders=encoders).run(until_idle=True).jobs


def test_tiny_inverter_trains_recovers_with_cosine_and_is_evaluated(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        train_id = one(conn, "SELECT vk.train('inv', 'vec2text-inverter', %s, 'documents')", (TINY,))
        assert serve(corpus_url, encoders) == [train_id]  # an inverter has no vectors: no reembed job follows
        with conn.cursor(row_factory=dict_row) as cur:
            train = cur.execute("SELECT * FROM vk.jobs WHERE id = %s", (train_id,)).fetchone()
        assert train is not None and train["status"] == "succeeded", train and train["error"]
        for key in ("train_loss", "val_loss", "inversion_mean_cosine", "inversion_token_f1", "inversion_bleu"):
            assert train["metrics"][key] is not None, key
        inverter = registry.by_spec(conn, "inv@1")
        assert (inverter.kind, inverter.dim, inverter.params["encoder"]) == ("vec2text-inverter", 384, "minilm@1")
        assert one(conn, "SELECT size_bytes FROM vk.model_artifacts WHERE model_id = %s", (inverter.id,)) > 0

        # Adopted vectors of the same encoder: the inverter is found through the fingerprint.
        conn.execute(LEGACY)
        conn.execute("SELECT vk.adopt('legacy_vectors', 'id', 'v', 'legacy')")
        conn.execute("UPDATE vk.models SET fingerprint = (vk.model('minilm@1')).fingerprint WHERE name = 'legacy'")
        recover_id = one(
            conn, "SELECT vk.recover_adopted('legacy_vectors', 'vec2text', NULL, '{\"steps\": 1, \"beam_width\": 2}')"
        )
        assert serve(corpus_url, encoders) == [recover_id]
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT r.*, l.v FROM vk.recovered r JOIN legacy_vectors l ON l.id = r.pk::bigint "
                "ORDER BY r.pk::bigint, r.method"
            ).fetchall()
        # Each row by both methods: the inverter's text and the nearest stored text, each with its cosine.
        assert [r["method"] for r in rows] == ["nearest", "vec2text"] * 3
        minilm = encoders.get(conn, registry.by_spec(conn, "minilm@1"))
        for r in rows:
            assert r["job_id"] == recover_id and isinstance(r["body"], str)
            if r["method"] == "vec2text":
                assert r["reference_model_id"] == inverter.id and r["details"]["steps"] == 1
            else:
                assert r["reference_model_id"] == inverter.params["encoder_model_id"] and r["source_pk"] == r["pk"]
            # The recorded cosine is that of the recovered text, re-embedded, to the target.
            target = registry.as_array(r["v"])
            again = minilm.encode([r["body"]])[0]
            cosine = float(again @ target / (np.linalg.norm(again) * np.linalg.norm(target)))
            assert r["similarity"] == pytest.approx(cosine, abs=1e-4)

        # A one-epoch inverter loses to the stored text (the adopted vectors are stored rows'):
        # the answer for each row is the nearest text, the inverter's kept beside it.
        with conn.cursor(row_factory=dict_row) as cur:
            answers = cur.execute("SELECT * FROM vk.recovered_text('legacy_vectors')").fetchall()
        assert len(answers) == 3
        for a in answers:
            assert (a["method"], a["model"], a["similarity"]) == ("nearest", "minilm@1", pytest.approx(1, abs=1e-4))
            assert [alt["method"] for alt in a["alternatives"]] == ["vec2text"]

        # A tiny time box stops after the first step, and says so.
        conn.execute(
            "SELECT vk.recover_adopted('legacy_vectors', 'vec2text', 'inv@1', "
            '\'{"steps": 3, "beam_width": 2, "max_seconds": 0.001}\')'
        )
        serve(corpus_url, encoders)
        details = [r[0] for r in conn.execute("SELECT details FROM vk.recovered WHERE method = 'vec2text'")]
        assert len(details) == 3 and all(d["timed_out"] and d["steps"] == 0 for d in details)

        evaluate_id = one(
            conn,
            "SELECT vk.evaluate_recovery('documents', 'minilm@1', 'inv@1', "
            '\'{"rows": 4, "beam_width": 2, "steps": 0}\')',
        )
        assert serve(corpus_url, encoders) == [evaluate_id]
        metrics = one(conn, "SELECT metrics FROM vk.jobs WHERE id = %s", (evaluate_id,))
        for method in ("nearest", "vec2text", "best"):
            assert metrics[method]["n"] == 4
            assert set(metrics[method]) >= {"exact_match", "token_f1", "bleu", "mean_cosine"}
        # The baseline every generative method is reported against: nearest other stored text.
        assert metrics["nearest"]["mean_cosine"] > metrics["vec2text"]["mean_cosine"]
        assert metrics["best"]["mean_cosine"] >= metrics["nearest"]["mean_cosine"]


@pytest.mark.parametrize(
    ("kind", "method", "other"),
    [("vec2text-inverter", "vec2text", "edit-search"), ("edit-search", "edit-search", "vec2text")],
)
def test_inverting_vectors_of_another_encoder_is_refused(db_url: str, kind: str, method: str, other: str) -> None:
    with connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vk.models (name, version, kind, dim, params) VALUES ('inv', 1, %s, 384, "
            "jsonb_build_object('encoder_model_id', (vk.model('minilm@1')).id))",
            (kind,),
        )
        conn.execute("CREATE TABLE other_vectors (id int PRIMARY KEY, v vector(384))")
        conn.execute("INSERT INTO other_vectors VALUES (1, %s)", (np.ones(384, dtype=np.float32),))
        conn.execute("SELECT vk.adopt('other_vectors', 'id', 'v', 'other')")
        # The vectors' encoder is known, and it is not the inverter's.
        fingerprint = np.random.default_rng(7).standard_normal(384).astype(np.float32)
        conn.execute("UPDATE vk.models SET fingerprint = %s WHERE name = 'other'", (fingerprint,))
        with pytest.raises(errors.InvalidParameterValue, match="was made by another encoder"):
            conn.execute("SELECT vk.recover_adopted('other_vectors', %s, 'inv@1')", (method,))
        with pytest.raises(errors.ObjectNotInPrerequisiteState, match=f"no {method} inverter is known"):
            conn.execute("SELECT vk.recover_adopted('other_vectors', %s)", (method,))
        with pytest.raises(errors.WrongObjectType, match="not inverter: it cannot turn vectors into text"):
            conn.execute("SELECT vk.recover_adopted('other_vectors', %s, 'minilm@1')", (method,))
        with pytest.raises(errors.InvalidParameterValue, match=f"recovers text by {method}, not by {other}"):
            conn.execute("SELECT vk.recover_adopted('other_vectors', %s, 'inv@1')", (other,))
        with pytest.raises(errors.InvalidParameterValue, match="Methods: best, nearest, edit-search, vec2text"):
            conn.execute("SELECT vk.recover_adopted('other_vectors', 'magic')")


def test_a_pretrained_inverter_is_registered_from_a_local_directory(
    db_url: str, encoders: EncoderCache, tmp_path: Any
) -> None:
    from helpers import cli, save_untrained_inverter
    from vectorkeep.workers.families.text.sentence_transformers import MINILM
    from vectorkeep.workers.families.vec2text import model as inverter_model

    original, _ = save_untrained_inverter(tmp_path)

    done = cli(
        db_url,
        "models",
        "register",
        "pre",
        "--kind",
        "vec2text-inverter",
        "--source",
        str(tmp_path / "inverter"),
        "--for",
        "minilm@1",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    with connect(db_url, autocommit=True) as conn:
        version = registry.by_spec(conn, "pre@1")
        assert (version.kind, version.dim, version.params["encoder"]) == ("vec2text-inverter", 384, "minilm@1")
        # The stored inverter generates what the saved one generates (8 tokens: an untrained decoder never
        # stops, and each token costs a pass over its vocabulary; any weight lost shows in the first ones).
        from vectorkeep.db import artifacts

        loaded = inverter_model.from_artifact(MINILM, version.params, artifacts.load(conn, version))
        vector = np.random.default_rng(0).standard_normal((1, 384)).astype(np.float32)
        assert inverter_model.generate(loaded, vector, beam_width=2, max_tokens=8) == inverter_model.generate(
            original.eval(), vector, beam_width=2, max_tokens=8
        )

    refused = cli(
        db_url,
        "models",
        "register",
        "bad",
        "--kind",
        "vec2text-inverter",
        "--source",
        str(tmp_path / "nowhere"),
        "--for",
        "minilm@1",
    )
    assert refused.returncode == 1 and "error:" in refused.stderr
