"""Text queries in plain SQL (vk.embed, vk.search with a text): a running worker's text-query
lane encodes them, the cache answers repeats, and nothing hangs or leaks without one."""

import time
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from psycopg import errors

from helpers import one, running_lane, serve
from vectorkeep.app import search
from vectorkeep.db import registry
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.text_queries import TextQueryLane

pytestmark = pytest.mark.needs_dblink

QUERY = "how long should bread dough rise before baking"


@pytest.fixture
def lane(corpus_url: str, lane_encoders: EncoderCache) -> Iterator[TextQueryLane]:
    """A worker's text-query lane serving the corpus database until the test ends."""
    with running_lane(corpus_url, lane_encoders) as served:
        yield served


def cosine(a: object, b: object) -> float:
    x, y = (np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float64) for v in (a, b))
    return float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y)))


def local_vector(conn: psycopg.Connection, encoders: EncoderCache, spec: str, text: str) -> np.ndarray:
    return encoders.get(conn, registry.by_spec(conn, spec)).encode([text])[0]


def test_a_text_query_from_plain_sql_with_a_worker_running(
    corpus_url: str, lane: TextQueryLane, encoders: EncoderCache
) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        by_text = conn.execute("SELECT pk, distance FROM vk.search('documents', %s, 5)", (QUERY,)).fetchall()
        expected = local_vector(conn, encoders, "minilm@1", QUERY)
        by_vector = conn.execute("SELECT pk, distance FROM vk.search('documents', %s, 5)", (expected,)).fetchall()
        assert [r[0] for r in by_text] == [r[0] for r in by_vector]
        assert cosine(one(conn, "SELECT vk.embed('minilm', %s)", (QUERY,)), expected) > 0.999
        # Inside the caller's own transaction, even a repeatable-read one: the request travels outside it.
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            inside = conn.execute("SELECT pk FROM vk.search('documents', 'a different question', 5)").fetchall()
        assert len(inside) == 5
        # The query's text was not kept; only its vector, by hash, in the cache.
        assert one(conn, "SELECT count(*) FROM vk.embed_requests") == 0
        assert one(conn, "SELECT count(*) FROM vk.embed_cache") == 2
        # Chunks and hybrid take the same text.
        assert len(conn.execute("SELECT * FROM vk.search_chunks('documents', %s::text, 3)", (QUERY,)).fetchall()) == 3
    assert lane.answered == 2


def test_the_command_line_search_uses_the_worker_and_loads_no_model(corpus_url: str, lane: TextQueryLane) -> None:
    mine = EncoderCache()
    rows = search.search(corpus_url, "documents", QUERY, k=3, encoders=mine)
    assert len(rows) == 3
    with connect(corpus_url) as conn:
        assert not mine.loaded(registry.by_spec(conn, "minilm@1"))
    assert lane.answered == 1


def test_a_cache_hit_needs_no_worker_and_no_worker_is_a_clear_error(
    corpus_url: str, lane_encoders: EncoderCache
) -> None:
    with running_lane(corpus_url, lane_encoders) as served:
        with connect(corpus_url, autocommit=True) as conn:
            first = conn.execute("SELECT pk FROM vk.search('documents', %s, 5)", (QUERY,)).fetchall()
        assert served.answered == 1
    with connect(corpus_url, autocommit=True) as conn:
        # The lane is gone: the cached text still answers, a new one fails at once and says why.
        assert conn.execute("SELECT pk FROM vk.search('documents', %s, 5)", (QUERY,)).fetchall() == first
        started = time.monotonic()
        with pytest.raises(errors.ObjectNotInPrerequisiteState, match="no worker is running") as failure:
            conn.execute("SELECT vk.embed('minilm', 'a text nobody asked before')")
        assert time.monotonic() - started < 2
        assert "vectorkeep worker" in (failure.value.diag.message_hint or "")
        assert one(conn, "SELECT count(*) FROM vk.embed_requests") == 0


def test_a_worker_that_does_not_answer_times_out_instead_of_hanging(corpus_url: str) -> None:
    # A session that looks like a lane but never answers (a worker stuck loading a model).
    with (
        psycopg.connect(corpus_url, autocommit=True, application_name="vectorkeep interactive stuck"),
        connect(corpus_url, autocommit=True) as conn,
    ):
        conn.execute("SET vk.embed_timeout = '300ms'")
        started = time.monotonic()
        with pytest.raises(errors.QueryCanceled, match="no worker answered the text query within") as failure:
            conn.execute("SELECT * FROM vk.search('documents', 'waits for nobody', 3)")
        assert time.monotonic() - started < 3
        assert "vk.embed_timeout" in (failure.value.diag.message_hint or "")
        assert one(conn, "SELECT count(*) FROM vk.embed_requests") == 0  # nothing left behind
        conn.execute("SET vk.embed_timeout = 'soon'")
        with pytest.raises(errors.InvalidParameterValue, match=r"vk\.embed_timeout"):
            conn.execute("SELECT vk.embed('minilm', 'x')")


def test_bad_text_queries_get_clear_errors(corpus_url: str, lane: TextQueryLane) -> None:
    cases: list[tuple[str, object, type[Exception], str]] = [
        ("SELECT vk.embed('minilm', %s)", None, errors.InvalidParameterValue, "query text is NULL"),
        ("SELECT vk.embed('minilm', %s)", "   ", errors.InvalidParameterValue, "query text is empty"),
        ("SELECT vk.embed('minilm', %s)", "x" * 20_001, errors.ProgramLimitExceeded, "over the limit"),
        ("SELECT vk.embed('nope', %s)", "text", errors.UndefinedObject, "unknown model"),
        ("SELECT * FROM vk.search('documents', %s::text, 0)", "text", errors.InvalidParameterValue, "k must be"),
        ("SELECT * FROM vk.search('documents', %s, 3)", "[1, 2, 3]", errors.InvalidParameterValue, "3 dimensions"),
    ]
    with connect(corpus_url, autocommit=True) as conn:
        for statement, value, error, message in cases:
            with pytest.raises(error, match=message):
                conn.execute(statement, (value,))
    assert lane.answered == 0


def test_a_model_trained_in_the_database_answers_text_queries(
    corpus_url: str, encoders: EncoderCache, lane_encoders: EncoderCache
) -> None:
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute("SELECT vk.train('words', 'tfidf', '{\"dim\": 32}', collection => 'documents')")
    serve(corpus_url, encoders)  # trains words@1, then re-embeds vk.documents with it
    with running_lane(corpus_url, lane_encoders) as served, connect(corpus_url, autocommit=True) as conn:
        # Not a search default: the lane loads it from its artifact on the first query.
        vector = one(conn, "SELECT vk.embed('words@1', %s)", (QUERY,))
        assert cosine(vector, local_vector(conn, encoders, "words@1", QUERY)) > 0.999
        rows = conn.execute("SELECT pk FROM vk.search('documents', %s, 3, 'words@1')", (QUERY,)).fetchall()
        assert len(rows) == 3
        assert served.answered == 1  # the search's text was the same: a cache hit


def test_an_application_text_searches_only_what_it_can_read(
    corpus_url: str, lane: TextQueryLane, server_url: str
) -> None:
    with psycopg.connect(corpus_url, autocommit=True) as owner:
        owner.execute("CREATE TABLE secrets (id int PRIMARY KEY, s text)")
        owner.execute("INSERT INTO secrets VALUES (1, 'the launch code is 0000')")
        owner.execute("SELECT vk.attach('secrets', 'id', 's', model => NULL)")
    app = _login(server_url, corpus_url, "vk_app")
    try:
        with connect(app(), autocommit=True) as conn:
            assert len(conn.execute("SELECT pk FROM vk.search('documents', %s, 3)", (QUERY,)).fetchall()) == 3
            with pytest.raises(errors.InsufficientPrivilege, match='collection "secrets"'):
                conn.execute("SELECT * FROM vk.search('secrets', 'launch code', 3)")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM vk.hybrid_search('secrets', 'launch code', 3)")
            # The loopback connection vk opened in this session is not the application's to use.
            with pytest.raises((errors.InsufficientPrivilege, errors.UndefinedFunction)):
                conn.execute("SELECT * FROM vk_dblink.dblink('vk_embed', 'SELECT 1') AS t(x int)")
            for table in ("embed_requests", "embed_cache"):
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(f"SELECT * FROM vk.{table}")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("SELECT vk._request_embedding(1, 'spam', current_user, pg_backend_pid())")
    finally:
        app.drop()  # type: ignore[attr-defined]
    assert lane.answered == 1


def test_a_role_that_could_use_dblink_gets_no_connection_left_open(
    corpus_url: str, lane: TextQueryLane, server_url: str
) -> None:
    """Where a session's role may call dblink itself, the loopback vk opens as its owner is closed
    after each text query, so the role cannot send its own statements down it."""
    app = _login(server_url, corpus_url, "vk_app")
    try:
        with psycopg.connect(corpus_url, autocommit=True) as owner:
            owner.execute(f"GRANT USAGE ON SCHEMA vk_dblink TO {app.name}")
        with connect(app(), autocommit=True) as conn:
            assert len(conn.execute("SELECT pk FROM vk.search('documents', %s, 3)", (QUERY,)).fetchall()) == 3
            assert one(conn, "SELECT vk_dblink.dblink_get_connections()") is None
            with pytest.raises(psycopg.Error, match=r"password|could not find connection"):  # not an open connection
                conn.execute("SELECT * FROM vk_dblink.dblink('vk_embed', 'SELECT 1') AS t(x int)")
    finally:
        app.drop()


class _login:
    """A login role in a group for one test (the conftest fixture is tied to db_url)."""

    def __init__(self, server_url: str, url: str, group: str) -> None:
        from conftest import as_user

        self.server_url, self.url = server_url, url
        self.name = f"t_text_{group}_{time.monotonic_ns()}"
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {self.name} LOGIN IN ROLE {group}")
        self.role_url = as_user(url, self.name)

    def __call__(self) -> str:
        return self.role_url

    def drop(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as owner:
            owner.execute(f"DROP OWNED BY {self.name} CASCADE")
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {self.name}")
