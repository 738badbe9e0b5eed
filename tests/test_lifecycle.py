"""Models and jobs an operator can trust: one registry of kinds, parameters and roles checked when a job
is queued, gates that refuse a collapsed space, versions that retire themselves, and errors that say
what to do. Each test is a case a new user hit."""

import numpy as np
import psycopg
import pytest
from psycopg import errors
from psycopg.rows import dict_row

from helpers import one, serve
from vectorkeep.cli import main
from vectorkeep.db import kinds
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache


def add_inverter(conn: psycopg.Connection) -> None:
    """A ready vec2text inverter version for minilm@1 (its weights do not matter here)."""
    conn.execute(
        "INSERT INTO vk.models (name, version, kind, dim, params) VALUES ('inverter', 1, 'vec2text-inverter', 384, "
        "jsonb_build_object('encoder_model_id', (vk.model('minilm@1')).id))"
    )


# --- one registry of kinds --------------------------------------------------------------------------


def test_the_sql_side_reads_the_kinds_and_roles_the_registry_declares(conn: psycopg.Connection) -> None:
    rows = {r[0]: r[1:] for r in conn.execute("SELECT kind, role, trainable, loadable FROM vk.model_kinds")}
    assert rows == {k.name: (k.role, k.trainable, k.loader is not None) for k in kinds.KINDS}
    params = one(conn, "SELECT params FROM vk.model_kinds WHERE kind = 'tfidf'")
    assert params["dim"] == {"type": "integer", "default": 128, "min": 2, "max": 2000, "help": params["dim"]["help"]}
    assert one(conn, "SELECT vk.model_role(m) FROM vk.models m WHERE name = 'minilm'") == "encoder"


def test_command_line_choices_and_help_come_from_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for kind in kinds.names(trainable=True):
        assert kind in out
    assert "reduce (string svd|pca|none, default svd)" in out or "reduce (svd|pca|none, default svd)" in out
    with pytest.raises(SystemExit):
        main(["train", "x", "--kind", "sentence-transformers"])  # registered, not trained here
    assert "invalid choice" in capsys.readouterr().err


# --- parameters checked when the job is queued -------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "message", "hint"),
    [
        # A typo used to be ignored: the model got the default 128 dimensions.
        ("tfidf", '{"dims": 16}', 'tfidf has no parameter "dims"', "dim (integer 2..2000, default 128)"),
        # tfidf-mlp's dimension is its teacher's: dim=64 used to become 384 silently.
        ("tfidf-mlp", '{"dim": 64}', 'tfidf-mlp has no parameter "dim"', "its dimension is the teacher's"),
        # A bad choice used to fail only inside the job.
        ("tfidf", '{"reduce": "svdd"}', 'parameter "reduce" of tfidf must be one of "svd", "pca", "none"', "svd|pca"),
        ("doc2vec", '{"epochs": "five"}', 'parameter "epochs" of doc2vec must be an integer, not "five"', "1..1000"),
        ("doc2vec", '{"epochs": 2.5}', 'parameter "epochs" of doc2vec must be an integer', "passes over the text"),
        ("tfidf", '{"dim": 0}', 'parameter "dim" of tfidf must be between 2 and 2000, not 0', "dimensions"),
        ("tfidf-mlp", '{"hidden": [64, -1]}', 'parameter "hidden" of tfidf-mlp must be between 1 and 8192', ""),
        ("tfidf-mlp", '{"hidden": 64}', 'parameter "hidden" of tfidf-mlp must be a non-empty list of integers', ""),
        ("tfidf", '{"activate": {"recall@10": "high"}}', 'gate "recall@10" of parameter "activate"', "agreement@10"),
        ("tfidf", "[1, 2]", "the parameters must be a JSON object", "Its parameters"),
    ],
)
def test_train_refuses_bad_parameters_naming_them_and_what_they_allow(
    conn: psycopg.Connection, kind: str, params: str, message: str, hint: str
) -> None:
    for call in (
        "SELECT vk.train('m', %s, %s, collection => 'documents')",
        "SELECT vk.schedule_train('m', %s, '1 day', %s, collection => 'documents')",
    ):
        with pytest.raises(errors.InvalidParameterValue) as raised:
            conn.execute(call, (kind, params))
        assert message in str(raised.value)
        assert hint in (raised.value.diag.message_hint or "")
    assert one(conn, "SELECT count(*) FROM vk.jobs") == 0
    assert one(conn, "SELECT count(*) FROM vk.schedules") == 0


def test_a_model_parameter_must_name_a_version_of_the_right_role(conn: psycopg.Connection) -> None:
    add_inverter(conn)
    with pytest.raises(errors.WrongObjectType, match='parameter "teacher" of tfidf-mlp must name an encoder'):
        conn.execute("""SELECT vk.train('m', 'tfidf-mlp', '{"teacher": "inverter@1"}', collection => 'documents')""")
    with pytest.raises(errors.UndefinedObject, match='unknown model "nope"'):
        conn.execute("""SELECT vk.train('m', 'umap', '{"source": "nope"}', collection => 'documents')""")


def test_the_job_records_every_parameter_it_will_use(conn: psycopg.Connection) -> None:
    job_id = one(conn, """SELECT vk.train('words', 'tfidf', '{"dim": 16}', collection => 'documents')""")
    params = one(conn, "SELECT params FROM vk.jobs WHERE id = %s", (job_id,))
    assert params["model"] == "words" and params["kind"] == "tfidf"
    assert params["params"] == {
        "dim": 16,
        "reduce": "svd",
        "max_features": 4096,
        "min_df": 2,
        "batch_size": 512,
        "holdout": 0.1,
    }


# --- roles: an inverter is not an encoder ------------------------------------------------------------


def test_an_inverter_is_never_subscribed_to_a_collection(conn: psycopg.Connection) -> None:
    add_inverter(conn)
    for call in (
        "SELECT vk.reembed('documents', 'inverter@1')",
        "SELECT vk.add_model('documents', 'inverter@1')",
    ):
        with pytest.raises(errors.WrongObjectType, match=r"inverter@1 is a vec2text-inverter model \(role inverter\)"):
            conn.execute(call)
    with pytest.raises(errors.WrongObjectType, match="cannot be activated"):
        conn.execute("SELECT vk.activate('documents', 'inverter@1')")
    assert one(conn, "SELECT count(*) FROM vk.collection_models WHERE model_id = (vk.model('inverter@1')).id") == 0
    assert one(conn, "SELECT count(*) FROM vk.jobs") == 0
    conn.execute("INSERT INTO vk.documents (body) VALUES ('a new row')")
    assert one(conn, "SELECT count(*) FROM vk.queue WHERE model_id = (vk.model('inverter@1')).id") == 0


def test_retiring_from_one_collection_leaves_the_version_usable_elsewhere(
    corpus_url: str, encoders: EncoderCache
) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        add_inverter(conn)
        # The clean-up that used to retire the inverter everywhere, with no way back.
        with pytest.raises(errors.ObjectNotInPrerequisiteState, match='inverter@1 has no vectors in "documents"') as e:
            conn.execute("SELECT vk.retire('inverter@1', 'documents')")
        assert "SELECT vk.retire('inverter@1')" in (e.value.diag.message_hint or "")
        assert one(conn, "SELECT status FROM vk.models WHERE name = 'inverter'") == "ready"

        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes SELECT id, body FROM vk.documents ORDER BY id LIMIT 50")
        conn.execute("SELECT vk.attach('notes', 'id', 'body', 'minilm@1')")
        conn.execute("""SELECT vk.train('words', 'tfidf', '{"dim": 8}', collection => 'documents')""")
        serve(corpus_url, encoders)
        conn.execute("SELECT vk.reembed('notes', 'words@1')")
        serve(corpus_url, encoders)
        assert one(conn, "SELECT vk.retire('words@1', 'notes', confirm => true)") == 50
        assert one(conn, "SELECT status FROM vk.models WHERE name = 'words'") == "ready"
        assert (
            one(
                conn,
                "SELECT count(*) FROM vk.search('documents', vk.row_vector('documents', '1', 'words@1'), 3, 'words@1')",
            )
            == 3
        )
        # Retired everywhere, it comes back when asked for by name@version.
        assert one(conn, "SELECT vk.retire('words@1', confirm => true)") == 400
        assert one(conn, "SELECT status FROM vk.models WHERE name = 'words'") == "retired"
        conn.execute("SELECT vk.reembed('documents', 'words@1')")
        serve(corpus_url, encoders)
        assert one(conn, "SELECT status FROM vk.models WHERE name = 'words'") == "ready"
        assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE model_id = (vk.model('words@1')).id") == 400


# --- gates that catch collapse -------------------------------------------------------------------------


def test_a_collapsed_model_is_refused_though_its_recall_looks_good(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        conn.execute("""SELECT vk.train('mlp', 'tfidf-mlp', '{"epochs": 3}', collection => 'documents')""")
        serve(corpus_url, encoders)
        metrics = one(conn, "SELECT metrics FROM vk.models WHERE name = 'mlp'")
        # Every vector nearly the same: the half-text query still finds its row among few distinct ones.
        assert metrics["distance_spread"] < 0.02, metrics
        with pytest.raises(errors.CheckViolation, match=r"mlp@1 fails its gate: distance_spread = 0\.0") as refused:
            conn.execute("SELECT vk.activate('documents', 'mlp@1', '{\"recall@10\": 0.5}')")
        hint = refused.value.diag.message_hint or ""
        assert "loss_history" not in hint and "recall@10" in hint  # the figures, not 3 epochs of history
        with pytest.raises(errors.CheckViolation, match="agreement@10"):
            conn.execute("SELECT vk.activate('documents', 'mlp@1', '{\"agreement@10\": 0.5}')")
        assert cur.execute("SELECT vk.model_label(vk.model('minilm'))").fetchone() == {"model_label": "minilm@1"}
        # The operator may overrule the default gate, in writing.
        conn.execute("SELECT vk.activate('documents', 'mlp@1', '{\"distance_spread\": 0}')")
        assert one(conn, "SELECT status FROM vk.models WHERE name = 'mlp'") == "active"


# --- versions that retire themselves, schedules that stop -----------------------------------------------


def test_keep_retires_older_versions_from_the_collection_but_never_its_default(
    corpus_url: str, encoders: EncoderCache
) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute("""SELECT vk.train('words', 'tfidf', '{"dim": 8}', collection => 'documents')""")
        serve(corpus_url, encoders)
        conn.execute("SELECT vk.activate('documents', 'words@1', '{\"distance_spread\": 0}')")
        for _ in range(3):
            conn.execute("""SELECT vk.train('words', 'tfidf', '{"dim": 8, "keep": 2}', collection => 'documents')""")
            serve(corpus_url, encoders)
        embedded = [
            r[0]
            for r in conn.execute(
                "SELECT vk.model_label(m) FROM vk.collection_models cm JOIN vk.models m ON m.id = cm.model_id "
                "WHERE m.name = 'words' ORDER BY m.version"
            )
        ]
        assert embedded == ["words@1", "words@4"]  # the default stays and counts; @2, @3 went
        assert (
            one(
                conn,
                "SELECT count(*) FROM vk.embeddings WHERE model_id IN "
                "((vk.model('words@2')).id, (vk.model('words@3')).id)",
            )
            == 0
        )
        assert one(conn, "SELECT status FROM vk.models WHERE name = 'words' AND version = 2") == "ready"


def test_a_schedule_keeps_three_versions_by_default_and_stops(conn: psycopg.Connection) -> None:
    conn.execute("SELECT vk.schedule_train('words', 'tfidf', '1 day', '{\"dim\": 8}', collection => 'documents')")
    assert one(conn, "SELECT params -> 'params' ->> 'keep' FROM vk.schedules") == "3"
    with pytest.raises(errors.DuplicateObject, match="already retrained") as twice:
        conn.execute("SELECT vk.schedule_train('words', 'tfidf', '1 hour', collection => 'documents')")
    assert "vk.unschedule('words', 'documents')" in (twice.value.diag.message_hint or "")
    assert one(conn, "SELECT vk.unschedule('words')") == 1
    assert one(conn, "SELECT enabled FROM vk.schedules") is False
    assert one(conn, "SELECT vk.run_due_schedules_v1()") == 0
    with pytest.raises(errors.NoDataFound, match="no schedule retrains words"):
        conn.execute("SELECT vk.unschedule('words')")


def test_train_stop_schedule_on_the_command_line(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "--database-url",
                db_url,
                "train",
                "words",
                "--kind",
                "tfidf",
                "--collection",
                "documents",
                "--param",
                "dim=8",
                "--every",
                "1d",
            ]
        )
        == 0
    )
    assert main(["--database-url", db_url, "train", "words", "--stop-schedule", "--json"]) == 0
    assert '"schedules_stopped": 1' in capsys.readouterr().out


# --- errors that say what to do ----------------------------------------------------------------------


def test_adopting_a_table_without_a_key_says_how_to_add_one(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE legacy (id int, v vector(3))")
    conn.execute("INSERT INTO legacy VALUES (1, '[1,0,0]'), (2, '[0,1,0]')")
    with pytest.raises(errors.InvalidTableDefinition, match='"id" of legacy has no primary key or unique index') as e:
        conn.execute("SELECT vk.adopt('legacy', 'id', 'v', 'old')")
    assert "ALTER TABLE legacy ADD PRIMARY KEY (id)" in (e.value.diag.message_hint or "")


def test_adopting_or_attaching_a_table_twice_names_what_it_already_is(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE legacy (id int PRIMARY KEY, v vector(3))")
    conn.execute("INSERT INTO legacy VALUES (1, '[1,0,0]')")
    conn.execute("SELECT vk.adopt('legacy', 'id', 'v', 'old')")
    with pytest.raises(errors.DuplicateObject, match=r'legacy is already adopted, as "legacy" \(model old@1\)'):
        conn.execute("SELECT vk.adopt('legacy', 'id', 'v', 'old', 'again')")
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    conn.execute("SELECT vk.attach('notes', 'id', 'body', 'minilm@1')")
    with pytest.raises(errors.DuplicateObject, match='notes is already attached, as collection "notes"') as e:
        conn.execute("SELECT vk.attach('notes', 'id', 'body', 'minilm@1', 'notes2')")
    assert "vk.detach('notes')" in (e.value.diag.message_hint or "")
    with pytest.raises(errors.DuplicateObject, match='a collection is already named "notes"'):
        conn.execute("CREATE TABLE other (id int PRIMARY KEY, body text)")
        conn.execute("SELECT vk.attach('other', 'id', 'body', 'minilm@1', 'notes')")


def test_similar_of_a_deleted_row_says_it_is_gone(corpus_url: str) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute("DELETE FROM vk.documents WHERE id = 7")
        with pytest.raises(errors.NoDataFound, match="collection \"documents\" has no row '7'") as e:
            conn.execute("SELECT * FROM vk.similar('documents', '7')")
        assert "deleted" in (e.value.diag.message_hint or "")
        conn.execute("INSERT INTO vk.documents (id, body) OVERRIDING SYSTEM VALUE VALUES (100007, 'not embedded yet')")
        with pytest.raises(errors.NoDataFound, match="row '100007' of collection \"documents\" has no vector"):
            conn.execute("SELECT * FROM vk.similar('documents', '100007')")


def test_hints_list_only_usable_versions(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO vk.models (name, version, kind, dim, status) VALUES ('broken', 1, 'tfidf', 8, 'failed')")
    with pytest.raises(errors.UndefinedObject) as e:
        conn.execute("SELECT vk.model('nope')")
    hint = e.value.diag.message_hint or ""
    assert "minilm@1 (sentence-transformers)" in hint and "broken@1" not in hint
    assert "1 more are training, failed or retired" in hint


def test_the_readme_row_vector_works_with_two_tables_attached(corpus_url: str, encoders: EncoderCache) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'a note on bread dough')")
        conn.execute("SELECT vk.attach('notes', 'id', 'body', 'minilm@1')")
        serve(corpus_url, encoders)
        # The README's old example: more than one row has pk '1' now.
        with pytest.raises(errors.CardinalityViolation):
            conn.execute("SELECT vk.search('documents', (SELECT embedding FROM vk.embeddings WHERE pk = '1'), 5)")
        rows = conn.execute(
            "SELECT pk FROM vk.search('documents', vk.row_vector('documents', '1'), 5, 'minilm@1')"
        ).fetchall()
        assert rows[0][0] == "1"
        v = one(conn, "SELECT vk.row_vector('notes', '1')")
        assert np.asarray(v.to_numpy()).shape == (384,)
