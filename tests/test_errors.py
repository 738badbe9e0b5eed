"""Bad input gets a clear error, and loses nothing."""

import numpy as np
import psycopg
import pytest
from psycopg import errors
from psycopg.rows import dict_row

from helpers import FAST_RETRY, drain, embeddings, queue_size
from vectorkeep.workers import kinds
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.families.text.sentence_transformers import SentenceTransformerEncoder
from vectorkeep.workers.worker import Worker, WorkerSettings

VEC384 = "[" + ",".join(["0.05"] * 384) + "]"


def status(conn: psycopg.Connection, collection: str = "documents") -> dict:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM vk.status WHERE collection = %s", (collection,)).fetchone()
    assert row is not None
    return row


def test_wrong_dimension_is_a_clear_error(conn: psycopg.Connection) -> None:
    with pytest.raises(errors.InvalidParameterValue) as err:
        conn.execute("SELECT * FROM vk.search('documents', '[1,2,3]')")
    assert "3 dimensions but model minilm@1 has 384" in str(err.value)
    assert err.value.diag.message_hint
    with pytest.raises(errors.InvalidParameterValue):
        conn.execute("SELECT * FROM vk.recover('[1,2,3]', 'minilm')")


def test_unknown_collection_and_model_are_clear_errors(conn: psycopg.Connection) -> None:
    with pytest.raises(errors.UndefinedObject) as err:
        conn.execute("SELECT * FROM vk.search('nope', %s)", (VEC384,))
    assert 'unknown collection "nope"' in str(err.value)
    assert "documents" in (err.value.diag.message_hint or "")
    for spec in ("nope", "minilm@7"):
        with pytest.raises(errors.UndefinedObject, match=f'unknown model "{spec}"'):
            conn.execute("SELECT * FROM vk.search('documents', %s, 5, %s)", (VEC384, spec))
    with pytest.raises(errors.InvalidParameterValue, match="bad model version"):
        conn.execute("SELECT * FROM vk.recover(%s, 'minilm@x')", (VEC384,))
    with pytest.raises(errors.InvalidParameterValue, match="k must be between"):
        conn.execute("SELECT * FROM vk.search('documents', %s, 0)", (VEC384,))


def test_model_not_ready_or_not_embedded_for_collection(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO vk.models (name, version, kind, dim, status) VALUES ('wip', 1, 'external', 384, 'training')"
    )
    with pytest.raises(errors.ObjectNotInPrerequisiteState, match="not ready"):
        conn.execute("SELECT * FROM vk.recover(%s, 'wip@1')", (VEC384,))
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('other', 1, 'external', 384)")
    with pytest.raises(errors.ObjectNotInPrerequisiteState, match="not embedded with model other@1"):
        conn.execute("SELECT * FROM vk.search('documents', %s, 5, 'other@1')", (VEC384,))


def test_similar_of_a_row_without_vector(conn: psycopg.Connection) -> None:
    with pytest.raises(errors.NoDataFound, match="has no row '12345'"):
        conn.execute("SELECT * FROM vk.similar('documents', '12345')")
    conn.execute("INSERT INTO vk.documents (id, body) OVERRIDING SYSTEM VALUE VALUES (12345, 'queued')")
    with pytest.raises(errors.NoDataFound, match="has no vector"):
        conn.execute("SELECT * FROM vk.similar('documents', '12345')")


def test_vector_of_wrong_dimension_cannot_be_stored(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO vk.documents (body) VALUES ('x')")
    with pytest.raises(errors.InvalidParameterValue, match="vector has 3 dimensions"):
        conn.execute(
            "INSERT INTO vk.embeddings (collection_id, pk, model_id, embedding, body, text_sha256) "
            "SELECT 1, '1', 1, '[1,2,3]', 'x', sha256('x')"
        )


def test_null_empty_and_blank_text_do_not_block_the_queue(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("INSERT INTO vk.documents (body) VALUES (NULL), (''), ('  \t\n'), ('real text')")
    drain(db_url, encoders)
    assert queue_size(conn) == 0
    assert [r["body"] for r in embeddings(conn).values()] == ["real text"]
    s = status(conn)
    assert (s["rows"], s["embedded"], s["empty"], s["pending"], s["dead"]) == (4, 1, 3, 0, 0)
    # A text emptied later loses its old vector instead of keeping a stale one.
    conn.execute("UPDATE vk.documents SET body = NULL WHERE body = 'real text'")
    drain(db_url, encoders)
    assert embeddings(conn) == {}
    assert status(conn)["empty"] == 4


def test_nul_bytes_are_refused_by_postgres_with_a_clear_error(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.DataError, match="NUL"):
        conn.execute("INSERT INTO vk.documents (body) VALUES (%s)", ("bad\x00text",))
    assert queue_size(conn) == 0


def test_huge_and_long_text_are_embedded_and_truncation_is_recorded(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    # 2 MB: megabytes kept whole beside the vector, 400,000 word pieces for an encoder that reads 256. The
    # tokenizer reads all of it twice (for the vector and for the truncation flag): the test's cost, so no bigger.
    huge = "word " * 400_000
    assert len(huge) == 2_000_000
    conn.execute("INSERT INTO vk.documents (body) VALUES (%s), ('a short text'), (%s)", (huge, "long " * 300))
    drain(db_url, encoders)
    rows = {r["body"][:10]: r for r in embeddings(conn).values()}
    assert rows["word word "]["body"] == huge  # the whole text is kept beside its vector
    truncated: dict[str, bool] = dict(conn.execute("SELECT left(body, 10), truncated FROM vk.embeddings").fetchall())
    # all-MiniLM-L6-v2 reads 256 word pieces: the end of the long texts never reached their vectors.
    assert truncated == {"word word ": True, "a short te": False, "long long ": True}


def test_invalid_utf8_and_nan_vectors_are_refused_by_the_database(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.CharacterNotInRepertoire):
        conn.execute("INSERT INTO vk.documents (body) VALUES (convert_from(decode('c328', 'hex'), 'UTF8'))")
    for bad in ("[NaN,1]", "[Infinity,1]"):
        with pytest.raises(psycopg.DataError):
            conn.execute("SELECT * FROM vk.recover(%s::vector, 'minilm')", (bad,))
    assert queue_size(conn) == 0


class PoisonEncoder:
    """The real MiniLM encoder, except that it raises on texts containing POISON."""

    def __init__(self, params: dict, artifact: bytes | None = None) -> None:
        self._inner = SentenceTransformerEncoder(params["source"])

    @property
    def dim(self) -> int:
        return self._inner.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        if any("POISON" in t for t in texts):
            raise ValueError("cannot encode poisoned text")
        return self._inner.encode(texts)


@pytest.fixture
def poison_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(kinds.EXTRA_LOADERS, "poison-test", PoisonEncoder)


def test_one_bad_row_fails_alone_then_dies_visibly(conn: psycopg.Connection, db_url: str, poison_kind: None) -> None:
    conn.execute(
        "INSERT INTO vk.model_kinds (kind, role, trainable, loadable, description) "
        "VALUES ('poison-test', 'encoder', false, true, 'MiniLM that refuses poisoned text')"
    )
    conn.execute(
        "INSERT INTO vk.models (name, version, kind, dim, params) "
        "VALUES ('poison', 1, 'poison-test', 384, '{\"source\": \"sentence-transformers/all-MiniLM-L6-v2\"}')"
    )
    conn.execute("CREATE TABLE msgs (id int PRIMARY KEY, body text)")
    conn.execute("SELECT vk.attach('msgs', 'id', 'body', 'poison@1')")
    conn.execute("INSERT INTO msgs VALUES (1, 'fine one'), (2, 'POISON pill'), (3, 'fine three')")

    worker = Worker(db_url, WorkerSettings(retry=FAST_RETRY), encoders=EncoderCache())
    worker.run(until_idle=True)

    assert set(embeddings(conn, "msgs")) == {"1", "3"}
    with conn.cursor(row_factory=dict_row) as cur:
        (dead,) = cur.execute("SELECT * FROM vk.queue").fetchall()
    assert dead["pk"] == "2" and dead["dead"] and dead["attempts"] == FAST_RETRY.max_attempts
    assert "cannot encode poisoned text" in dead["last_error"]
    assert status(conn, "msgs")["dead"] == 1

    # Fixing the text requeues it with fresh attempts.
    conn.execute("UPDATE msgs SET body = 'cured' WHERE id = 2")
    worker.run(until_idle=True)
    assert set(embeddings(conn, "msgs")) == {"1", "2", "3"}
    assert queue_size(conn) == 0


def test_retry_dead_gives_rows_new_attempts(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO vk.documents (body) VALUES ('a')")
    conn.execute("UPDATE vk.queue SET dead = true, attempts = 5, last_error = 'boom'")
    assert conn.execute("SELECT vk.retry_dead('documents')").fetchone() == (1,)
    assert conn.execute("SELECT dead, attempts FROM vk.queue").fetchone() == (False, 0)


def test_encoder_with_another_fingerprint_is_refused(conn: psycopg.Connection, db_url: str) -> None:
    # As if minilm@1 had been registered with a different encoder.
    other = np.random.default_rng(1).standard_normal(384).astype(np.float32)
    conn.execute("UPDATE vk.models SET fingerprint = %s WHERE name = 'minilm'", (other,))
    conn.execute("INSERT INTO vk.documents (body) VALUES ('anything')")

    Worker(db_url, WorkerSettings(retry=FAST_RETRY), encoders=EncoderCache()).run(until_idle=True)

    assert embeddings(conn) == {}
    error = conn.execute("SELECT last_error FROM vk.queue").fetchone()
    assert error is not None and "not the one it was registered with" in error[0]


def test_unknown_model_kind_fails_rows_with_reason(conn: psycopg.Connection, db_url: str) -> None:
    # A kind the database knows (another release's) and this worker does not.
    conn.execute(
        "INSERT INTO vk.model_kinds (kind, role, trainable, loadable, description) "
        "VALUES ('no-such-kind', 'encoder', false, true, 'a kind of another release')"
    )
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('mystery', 1, 'no-such-kind', 384)")
    conn.execute("SELECT vk.add_model('documents', 'mystery@1')")
    conn.execute("INSERT INTO vk.documents (body) VALUES ('hello')")
    Worker(db_url, WorkerSettings(retry=FAST_RETRY), encoders=EncoderCache()).run(until_idle=True)
    # minilm still embeds the row; the mystery model's row is dead with its reason.
    assert [r["model"] for r in embeddings(conn).values()] == ["minilm@1"]
    error = conn.execute("SELECT last_error FROM vk.queue WHERE dead").fetchone()
    assert error is not None and "'no-such-kind'" in error[0]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("nosuch", "id", "body"), errors.UndefinedTable, "nosuch"),
        (("t", "nope", "body"), errors.UndefinedColumn, 'no column "nope"'),
        (("t", "body", "body"), errors.InvalidTableDefinition, "has no primary key or unique index"),
        (("t", "id", "body); DROP TABLE t; --"), errors.InvalidParameterValue, "bad text expression"),
        (("t", "id", "no_such_col || body"), errors.InvalidParameterValue, "does not evaluate"),
        (("t", "id", ""), errors.InvalidParameterValue, "bad text expression"),
        (("t", "id", "body", "nope"), errors.UndefinedObject, 'unknown model "nope"'),
    ],
)
def test_attach_validates_its_arguments(
    conn: psycopg.Connection, args: tuple[str, ...], error: type[Exception], message: str
) -> None:
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, body text)")
    placeholders = ", ".join(["%s"] * len(args))
    with pytest.raises(error, match=message):  # type: ignore[call-overload]
        conn.execute(f"SELECT vk.attach({placeholders})", args)
    assert conn.execute("SELECT to_regclass('t')").fetchone() == ("t",)
    assert conn.execute("SELECT count(*) FROM vk.collections").fetchone() == (1,)
