"""Backfills at index-build speed, and half-precision versions.

A version new to a collection is written without its HNSW index; its reembed
job builds the index once the vectors are written (CREATE INDEX CONCURRENTLY
for a role that owns vk.embeddings, vk.build_index_v1 for any other), and
vk.activate waits for it. A version stores its index and searches in vector
or halfvec (vk.set_storage, or the train parameter storage).
"""

import hashlib
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import errors

from helpers import FAST_RETRY, drain, one, serve
from vectorkeep.app import models
from vectorkeep.workers import kinds
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.families.text.sentence_transformers import MINILM
from vectorkeep.workers.service import Service
from vectorkeep.workers.worker import WorkerSettings

DIM = 64


class WordsEncoder:
    """A bag of hashed words, normalised: texts that share words are near. No model to load."""

    def __init__(self, params: dict[str, Any], artifact: bytes | None = None) -> None:
        self._dim = int(params.get("dim", DIM))

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[i] += np.random.default_rng(seed).standard_normal(self._dim).astype(np.float32)
            out[i] /= max(float(np.linalg.norm(out[i])), 1e-9)
        return out


@pytest.fixture
def words(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kind words-test, versions words@1 (the search default of `notes`) and words@2, 300 rows."""
    monkeypatch.setitem(kinds.EXTRA_LOADERS, "words-test", WordsEncoder)
    conn.execute(
        "INSERT INTO vk.model_kinds (kind, role, trainable, loadable, description) "
        "VALUES ('words-test', 'encoder', false, true, 'hashed bag of words')"
    )
    conn.execute(f"INSERT INTO vk.models (name, version, kind, dim) VALUES ('words', 1, 'words-test', {DIM})")
    conn.execute(f"INSERT INTO vk.models (name, version, kind, dim) VALUES ('words', 2, 'words-test', {DIM})")
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    conn.execute(
        "INSERT INTO notes SELECT g, 'note ' || g || ' about ' || (ARRAY['cats', 'dogs', 'birds', 'fish'])[g % 4 + 1] "
        "|| ' and ' || (ARRAY['rain', 'sun', 'snow'])[g % 3 + 1] FROM generate_series(1, 300) g"
    )
    conn.execute("SELECT vk.attach('notes', 'id', 'body', 'words@1')")


def index_state(conn: psycopg.Connection, model: str) -> str:
    return one(conn, "SELECT index FROM vk.status WHERE collection = 'notes' AND model = %s", (model,))


def index_definition(conn: psycopg.Connection, model: str) -> str | None:
    row = conn.execute(
        "SELECT pg_get_indexdef(to_regclass('vk.' || cm.index_name)) FROM vk.collection_models cm "
        "WHERE cm.collection_id = vk.collection_id('notes') AND cm.model_id = (vk.model(%s)).id",
        (model,),
    ).fetchone()
    return row[0] if row else None


def plan(conn: psycopg.Connection, model: str) -> str:
    """The plan of the query vk.search runs for that version (its SQL, from vk._nearest_sql)."""
    sql = one(
        conn,
        "SELECT vk._nearest_sql(c, vk.model(%s), false, false, false) FROM vk.collections c WHERE c.name = 'notes'",
        (model,),
    )
    vector = one(conn, "SELECT vk.row_vector('notes', '1', %s)::text", (model,))
    statement = "EXPLAIN " + sql.replace("$1", "'" + vector + "'").replace("$2", "5")
    with conn.transaction():
        # A few hundred rows: without this the planner may read them all, or (pgvector 0.7) take the
        # (collection, model) btree and sort; the question is whether an HNSW index serves the query.
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_sort = off")
        lines = conn.execute(statement.encode()).fetchall()
    return "\n".join(r[0] for r in lines)


def index_prefix(conn: psycopg.Connection) -> str:
    return f"embeddings_c{one(conn, 'SELECT vk.collection_id(%s)', ('notes',))}_m"


def test_a_new_version_is_written_without_its_index_which_its_job_builds_before_activation(
    conn: psycopg.Connection, db_url: str, words: None
) -> None:
    serve(db_url, EncoderCache())
    assert index_state(conn, "words@1") == "valid"  # the search default: indexed from the start

    job = one(conn, "SELECT vk.reembed('notes', 'words@2')")
    assert index_state(conn, "words@2") == "deferred"
    assert index_definition(conn, "words@2") is None
    with pytest.raises(errors.ObjectNotInPrerequisiteState, match="not complete"):
        conn.execute("SELECT vk.activate('notes', 'words@2')")
    # A row that arrives during the backfill is queued for both versions and lost by neither.
    conn.execute("INSERT INTO notes VALUES (301, 'note 301 about cats and sun, written during the backfill')")

    serve(db_url, EncoderCache())

    metrics = one(conn, "SELECT metrics FROM vk.jobs WHERE id = %s", (job,))
    # The tests' role owns vk.embeddings: the index is built concurrently, writers never wait.
    assert metrics["index"] == "valid" and metrics["index_concurrently"] is True
    assert index_state(conn, "words@2") == "valid"
    assert "hnsw" in (index_definition(conn, "words@2") or "")
    status: dict[str, int] = dict(
        conn.execute("SELECT model, embedded FROM vk.status WHERE collection = 'notes'").fetchall()
    )
    assert status == {"words@1": 301, "words@2": 301}
    assert index_prefix(conn) in plan(conn, "words@2")
    hits = conn.execute(
        "SELECT pk FROM vk.search('notes', vk.row_vector('notes', '301', 'words@2'), 3, 'words@2')"
    ).fetchall()
    assert hits[0][0] == "301"
    one(conn, "SELECT vk.activate('notes', 'words@2')")
    # Steady state: a new row goes through the (now valid) index.
    conn.execute("INSERT INTO notes VALUES (302, 'note 302 about fish and snow')")
    serve(db_url, EncoderCache())
    assert one(conn, "SELECT pk FROM vk.search('notes', vk.row_vector('notes', '302'), 1)") == "302"


def test_a_role_that_does_not_own_the_table_builds_the_index_through_vectorkeep(
    conn: psycopg.Connection, words: None, login: Callable[[str], str]
) -> None:
    worker_url = login("vk_worker")
    job = one(conn, "SELECT vk.reembed('notes', 'words@2')")
    Service(worker_url, WorkerSettings(retry=FAST_RETRY), encoders=EncoderCache()).run(until_idle=True)
    metrics = one(conn, "SELECT metrics FROM vk.jobs WHERE id = %s", (job,))
    assert metrics["index"] == "valid" and metrics["index_concurrently"] is False
    assert index_state(conn, "words@2") == "valid"
    # An application may read where the index stands, but neither build nor plan one.
    app_url = login("vk_app")
    with psycopg.connect(app_url, autocommit=True) as app:
        for statement in (
            "SELECT vk.build_index_v1(1, 1)",
            "SELECT * FROM vk.index_plan_v1(1, 1)",
            "SELECT vk.backfill_v1(1, 1)",
            "SELECT vk.set_storage('words@2', 'halfvec')",
            "SELECT vk._embed_with(c, m, false) FROM vk.collections c, vk.models m",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                app.execute(statement)


def test_add_model_backfills_a_second_version_and_queues_its_job(
    conn: psycopg.Connection, db_url: str, words: None
) -> None:
    conn.execute("SELECT vk.add_model('notes', 'words@2')")
    assert index_state(conn, "words@2") == "deferred"
    assert one(conn, "SELECT count(*) FROM vk.jobs WHERE kind = 'reembed' AND model_id = (vk.model('words@2')).id") == 1
    # Workers that run no jobs write every vector; the index waits for the job, and so does activation.
    drain(db_url, EncoderCache())
    assert one(conn, "SELECT embedded FROM vk.status WHERE collection = 'notes' AND model = 'words@2'") == 300
    assert index_state(conn, "words@2") == "deferred"
    refusal = r"indexes \(HNSW, keyword\) of words@2 .* are deferred"
    with pytest.raises(errors.ObjectNotInPrerequisiteState, match=refusal) as refused:
        conn.execute("SELECT vk.activate('notes', 'words@2')")
    assert "reembed job builds them" in (refused.value.diag.message_hint or "")
    serve(db_url, EncoderCache())
    assert index_state(conn, "words@2") == "valid"
    one(conn, "SELECT vk.activate('notes', 'words@2')")


def test_a_halfvec_version_indexes_and_searches_in_half_precision(
    conn: psycopg.Connection, db_url: str, words: None
) -> None:
    one(conn, "SELECT vk.set_storage('words@2', 'halfvec')")
    conn.execute("SELECT vk.reembed('notes', 'words@2')")
    serve(db_url, EncoderCache())
    assert "halfvec" in (index_definition(conn, "words@2") or "")
    assert "halfvec_cosine_ops" in (index_definition(conn, "words@2") or "")
    assert "halfvec" not in (index_definition(conn, "words@1") or "")
    assert one(conn, "SELECT storage FROM vk.status WHERE collection = 'notes' AND model = 'words@2'") == "halfvec"
    assert index_prefix(conn) in plan(conn, "words@2")
    # The same vectors in both versions: the same neighbours, distances within half precision.
    for pk in ("1", "77", "200"):
        single = conn.execute(
            "SELECT pk, distance FROM vk.search('notes', vk.row_vector('notes', %s, 'words@1'), 10, 'words@1')",
            (pk,),
        ).fetchall()
        half = conn.execute(
            "SELECT pk, distance FROM vk.search('notes', vk.row_vector('notes', %s, 'words@2'), 10, 'words@2')",
            (pk,),
        ).fetchall()
        assert half[0][0] == pk
        assert len({p for p, _ in single} & {p for p, _ in half}) >= 8
        assert abs(single[-1][1] - half[-1][1]) < 5e-3
    # vk.similar and vk.recover and a filter go the same way.
    assert len(conn.execute("SELECT * FROM vk.similar('notes', '5', 5, 'words@2')").fetchall()) == 5
    recovered = conn.execute(
        "SELECT pk FROM vk.recover(vk.row_vector('notes', '9', 'words@2'), 'words@2', 1)"
    ).fetchall()
    assert recovered == [("9",)]
    # Once it has vectors its storage is fixed; a wrong value says what is allowed.
    with pytest.raises(errors.ObjectNotInPrerequisiteState, match="already has vectors in notes"):
        conn.execute("SELECT vk.set_storage('words@2', 'vector')")
    with pytest.raises(errors.InvalidParameterValue, match="vector or halfvec"):
        conn.execute("SELECT vk.set_storage('words@1', 'float8')")


def test_an_encoder_registered_in_half_precision_is_searched_in_half_precision(conn: psycopg.Connection) -> None:
    version = models.register_encoder(conn.info.dsn, "mini-half", source=MINILM, storage="halfvec")
    assert one(conn, "SELECT storage FROM vk.models WHERE id = %s", (version.id,)) == "halfvec"
    conn.execute("CREATE TABLE tiny (id int PRIMARY KEY, body text)")
    conn.execute("SELECT vk.attach('tiny', 'id', 'body', 'mini-half@1')")
    definition = one(
        conn,
        "SELECT pg_get_indexdef(to_regclass('vk.' || index_name)) FROM vk.collection_models "
        "WHERE collection_id = vk.collection_id('tiny')",
    )
    assert "embedding)::halfvec(384)) halfvec_cosine_ops" in definition


def test_a_version_trained_in_half_precision_is_indexed_in_half_precision(
    conn: psycopg.Connection, db_url: str, words: None
) -> None:
    conn.execute(
        "SELECT vk.train('notes-tfidf', 'tfidf', %s, 'notes')", ('{"dim": 8, "min_df": 1, "storage": "halfvec"}',)
    )
    serve(db_url, EncoderCache())
    assert one(conn, "SELECT storage FROM vk.models WHERE name = 'notes-tfidf'") == "halfvec"
    assert "halfvec(8)) halfvec_cosine_ops" in (index_definition(conn, "notes-tfidf@1") or "")
    with pytest.raises(errors.InvalidParameterValue, match="storage"):
        conn.execute("SELECT vk.train('notes-tfidf', 'tfidf', '{\"storage\": \"float16\"}', 'notes')")
