"""Edit search, the CPU inverter: trained as a job on the database's own pairs, it beats the
nearest other stored text on held-out short texts within its time box; every recovered text
records its method, version and cosine; the nearest text wins where the inverter does worse
(vectors of another encoder are refused: tests/test_inversion.py, for every inverter kind)."""

import numpy as np
import pytest
from psycopg.rows import dict_row

from helpers import drain, one, serve
from vectorkeep.db import registry
from vectorkeep.db.connect import connect
from vectorkeep.workers.corpus import sentences
from vectorkeep.workers.encoder_cache import EncoderCache

ROWS = 400
# The held-out check at training runs 10 rows with this time box each. 32 edits a step (one encoder batch; 96
# by default) leave time for more than one step within a box, and a word predictor of 256 hidden units (1024
# by default) learns these few hundred pairs no worse, in a quarter of the time.
FAST = '{"epochs": 25, "seconds": 0.5, "candidates": 32, "hidden": 256}'


def test_edit_search_trains_as_a_job_beats_the_nearest_text_and_records_each_text(
    db_url: str, encoders: EncoderCache
) -> None:
    texts = list(sentences(max_words=24))[:ROWS]
    with connect(db_url, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO vk.documents (body) VALUES (%s)", [(t,) for t in texts])
        drain(db_url, encoders)
        train_id = one(conn, "SELECT vk.train('words', 'edit-search', %s, collection => 'documents')", (FAST,))
        assert serve(db_url, encoders) == [train_id]  # an inverter has no vectors: no reembed job follows
        with conn.cursor(row_factory=dict_row) as cur:
            train = cur.execute("SELECT * FROM vk.jobs WHERE id = %s", (train_id,)).fetchone()
        assert train is not None and train["status"] == "succeeded", train and train["error"]
        m = train["metrics"]
        assert m["vocabulary"] > 100 and m["pairs"] > 300 and "minilm@1" in m["trained_on"]
        # The held-out check it ranks by: its texts against the nearest other stored text.
        assert m["inversion_n"] == 10 and m["inversion_mean_cosine"] > m["nearest_mean_cosine"]
        inverter = registry.by_spec(conn, "words@1")
        assert (inverter.kind, inverter.dim, inverter.params["encoder"]) == ("edit-search", 384, "minilm@1")

        # Held-out rows, their text kept out of the reference: the inverter beats the baseline.
        evaluate_id = one(
            conn, "SELECT vk.evaluate_recovery('documents', 'minilm@1', NULL, '{\"rows\": 4, \"max_seconds\": 1}')"
        )
        assert serve(db_url, encoders) == [evaluate_id]
        scores = one(conn, "SELECT metrics FROM vk.jobs WHERE id = %s", (evaluate_id,))
        assert scores["edit-search"]["n"] == scores["nearest"]["n"] == 4 and scores["edit-search"]["model"] == "words@1"
        assert scores["edit-search"]["mean_cosine"] > scores["nearest"]["mean_cosine"]
        assert scores["best"]["mean_cosine"] >= scores["edit-search"]["mean_cosine"]
        for method in ("nearest", "edit-search", "best"):
            assert set(scores[method]) >= {"exact_match", "token_f1", "bleu", "seconds_per_vector"}

        # A legacy table of bare vectors: two whose text was deleted, one whose text is still stored.
        conn.execute("CREATE TABLE legacy (id bigint PRIMARY KEY, v vector(384))")
        conn.execute(
            "INSERT INTO legacy SELECT e.pk::bigint, e.embedding FROM vk.embeddings e ORDER BY e.pk::bigint LIMIT 3"
        )
        conn.execute("DELETE FROM vk.documents WHERE id IN (SELECT id FROM legacy ORDER BY id LIMIT 2)")
        drain(db_url, encoders)
        conn.execute("SELECT vk.adopt('legacy', 'id', 'v', 'legacy')")
        conn.execute("UPDATE vk.models SET fingerprint = (vk.model('minilm@1')).fingerprint WHERE name = 'legacy'")
        # No quality asked of these answers (the choice between the two texts is): a short time box.
        recover_id = one(conn, "SELECT vk.recover_adopted('legacy', params => '{\"max_seconds\": 0.3}')")
        assert serve(db_url, encoders) == [recover_id]
        with conn.cursor(row_factory=dict_row) as cur:
            answers = cur.execute(
                "SELECT r.*, l.v FROM vk.recovered_text('legacy') r JOIN legacy l ON l.id = r.pk::bigint ORDER BY l.id"
            ).fetchall()
            tried = cur.execute("SELECT pk, method FROM vk.recovered ORDER BY pk::bigint, method").fetchall()
        assert len(answers) == 3 and len(tried) == 6  # both methods, every row
        minilm = encoders.get(conn, registry.by_spec(conn, "minilm@1"))
        for a in answers:
            # Each answer's recorded cosine is that of its text, re-embedded, to the row's vector.
            again, target = minilm.encode([a["body"]])[0], registry.as_array(a["v"])
            cosine = float(again @ target / (np.linalg.norm(again) * np.linalg.norm(target)))
            assert a["similarity"] == pytest.approx(cosine, abs=1e-3)
            assert (a["method"], a["model"]) in {("edit-search", "words@1"), ("nearest", "minilm@1")}
            # The other method's text is no closer (a generated text must beat a stored one by over 1e-4).
            assert len(a["alternatives"]) == 1 and a["alternatives"][0]["similarity"] <= a["similarity"] + 1e-4
        # The stored text is the exact answer for its own vector: the inverter cannot beat it.
        assert (answers[2]["method"], answers[2]["similarity"]) == ("nearest", pytest.approx(1, abs=1e-4))
