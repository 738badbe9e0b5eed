"""Metadata beside the vectors, filtered search that still returns k rows, and hybrid keyword +
vector ranking."""

from collections.abc import Callable

import numpy as np
import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

from helpers import drain, one, running_lane
from vectorkeep.workers.encoder_cache import EncoderCache

ARTICLES = [
    # (id, tenant, topic, body)
    (1, 1, "cooking", "Knead the bread dough and let it proof for an hour before baking."),
    (2, 2, "cooking", "A sourdough starter needs flour, water and a few days of patience."),
    (3, 1, "python", "Python lists are mutable sequences; tuples are immutable."),
    (4, 2, "python", "Use a dictionary comprehension to invert a mapping in Python."),
    (5, 3, "databases", "PostgreSQL indexes speed up lookups by key."),
    (6, 3, "databases", "A B-tree index keeps keys sorted so range scans are cheap."),
    (7, 1, "gardening", "Prune tomato plants so the fruit gets more sun."),
    (8, 2, "gardening", "Zxqv-7 is the part number of the greenhouse vent opener."),
]


@pytest.fixture
def articles(conn: psycopg.Connection, db_url: str, encoders: EncoderCache) -> psycopg.Connection:
    conn.execute("CREATE TABLE articles (id int PRIMARY KEY, tenant int, topic text, body text)")
    conn.cursor().executemany("INSERT INTO articles VALUES (%s, %s, %s, %s)", ARTICLES)
    conn.execute(
        "SELECT vk.attach('articles', 'id', 'body', "
        "metadata => $$jsonb_build_object('tenant', tenant, 'topic', topic)$$)"
    )
    drain(db_url, encoders)
    return conn


def metadata(conn: psycopg.Connection, pk: str) -> object:
    return one(conn, "SELECT metadata FROM vk.embeddings WHERE collection_id = vk.collection_id('articles') "
               "AND pk = %s", (pk,))  # fmt: skip


def test_metadata_is_stored_and_kept_current_without_reembedding(
    articles: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn = articles
    assert metadata(conn, "3") == {"tenant": 1, "topic": "python"}
    before = one(conn, "SELECT computed_at FROM vk.embeddings WHERE pk = '3'")
    conn.execute("UPDATE articles SET tenant = 9 WHERE id = 3")
    assert metadata(conn, "3") == {"tenant": 9, "topic": "python"}
    assert one(conn, "SELECT count(*) FROM vk.queue") == 0  # nothing to re-embed
    assert one(conn, "SELECT computed_at FROM vk.embeddings WHERE pk = '3'") == before
    # A text change re-embeds, and the new vectors carry the current metadata.
    conn.execute("UPDATE articles SET body = 'Python tuples cannot change.', topic = 'py' WHERE id = 3")
    drain(db_url, encoders)
    assert metadata(conn, "3") == {"tenant": 9, "topic": "py"}
    # A new expression applies to every row at once; NULL removes it.
    conn.execute("SELECT vk.set_metadata('articles', $$jsonb_build_object('t', tenant)$$)")
    assert metadata(conn, "1") == {"t": 1}
    conn.execute("SELECT vk.set_metadata('articles', NULL)")
    assert metadata(conn, "1") is None


def test_filters_select_rows_by_metadata(articles: psycopg.Connection, encoders: EncoderCache) -> None:
    conn = articles
    query = one(conn, "SELECT embedding FROM vk.embeddings WHERE pk = '1'")
    rows = conn.execute(
        "SELECT pk FROM vk.search('articles', %s, 5, filter => %s)", (query, Jsonb({"tenant": 2}))
    ).fetchall()
    assert {r[0] for r in rows} == {"2", "4", "8"}  # all of tenant 2, fewer than k: all that match
    rows = conn.execute(
        "SELECT pk FROM vk.similar('articles', '1', 5, filter => %s)", (Jsonb({"topic": "cooking"}),)
    ).fetchall()
    assert [r[0] for r in rows] == ["2"]
    assert conn.execute("SELECT * FROM vk.search('articles', %s, 5, filter => '{}')", (query,)).rowcount == 5
    with pytest.raises(errors.InvalidParameterValue, match="a filter is a jsonb object"):
        conn.execute("SELECT * FROM vk.search('articles', %s, 5, filter => '[1]')", (query,))


def test_bad_metadata_expressions_are_refused_and_one_bad_row_fails_alone(
    articles: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn = articles
    for expression, message in [
        ("to_jsonb(tenant)", "not an object"),
        ("jsonb_build_object('x', (SELECT 1))", "subquery"),
        ("jsonb_build_object('x', random())", "volatile"),
        ("jsonb_build_object('x', nope)", "does not evaluate"),
    ]:
        with pytest.raises(psycopg.Error, match=message):
            conn.execute("SELECT vk.set_metadata('articles', %s)", (expression,))
    # One row whose metadata raises: the application's write succeeds, the row fails alone with the reason.
    conn.execute("SELECT vk.set_metadata('articles', $$jsonb_build_object('r', 10 / tenant)$$)")
    conn.execute("UPDATE articles SET tenant = 0 WHERE id = 5")
    conn.execute("INSERT INTO articles VALUES (9, 1, 'x', 'Another row that embeds fine.')")
    drain(db_url, encoders)
    assert one(conn, "SELECT last_error FROM vk.queue WHERE pk = '5'").startswith("metadata expression:")
    assert metadata(conn, "9") == {"r": 10}


def _synthetic(conn: psycopg.Connection, n: int, dim: int) -> np.ndarray:
    """n random vectors of an external model with metadata p = id % 10 (10% each) and q = id % 100 (1%)."""
    conn.execute("CREATE TABLE synth (id int PRIMARY KEY, body text)")
    conn.execute("INSERT INTO vk.models (name, version, kind, dim, distance) VALUES ('ext', 1, 'external', %s, 'l2')",
                 (dim,))  # fmt: skip
    conn.execute("SELECT vk.attach('synth', 'id', 'body', 'ext@1', metadata => $$jsonb_build_object('p', id % 10)$$)")
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    c_id, m_id = conn.execute("SELECT id, default_model_id FROM vk.collections WHERE name = 'synth'").fetchone()  # type: ignore[misc]
    copy_sql = "COPY vk.embeddings (collection_id, pk, model_id, embedding, body, text_sha256, metadata) FROM STDIN"
    with conn.cursor().copy(copy_sql) as copy:
        for i, v in enumerate(vectors):
            vector = "[" + ",".join(f"{x:.5f}" for x in v) + "]"
            copy.write_row((c_id, str(i), m_id, vector, "row", b"x", Jsonb({"p": i % 10, "q": i % 100})))
    conn.execute("ANALYZE vk.embeddings")
    return vectors


def test_filtered_search_returns_k_rows_where_post_filtering_returns_fewer(conn: psycopg.Connection) -> None:
    vectors = _synthetic(conn, 20_000, 8)
    exact_sql = (
        "SELECT pk FROM vk.embeddings WHERE collection_id = vk.collection_id('synth') AND metadata @> %s "
        "ORDER BY (embedding::vector(8) <-> %s::vector(8)) + 0 LIMIT 10"
    )
    rng = np.random.default_rng(1)
    for key, value, share in (("q", 3, 0.01), ("p", 3, 0.10)):  # 200 rows: exact; 2,000: iterative index scan
        flt = Jsonb({key: value})
        recall = []
        post_filtered = []
        for _ in range(10):
            q = rng.standard_normal(8).astype(np.float32)
            got = [r[0] for r in conn.execute("SELECT pk FROM vk.search('synth', %s, 10, filter => %s)", (q, flt))]
            assert len(got) == 10, (key, share)
            assert all(int(pk) % (100 if key == "q" else 10) == value for pk in got)
            exact = [r[0] for r in conn.execute(exact_sql, (flt, q))]
            recall.append(len(set(got) & set(exact)) / 10)
            top = [int(r[0]) for r in conn.execute("SELECT pk FROM vk.search('synth', %s, 10)", (q,))]
            post_filtered.append(sum(1 for pk in top if pk % (100 if key == "q" else 10) == value))
        assert np.mean(recall) >= 0.9, (key, recall)
        assert np.mean(post_filtered) < 5, (key, post_filtered)  # what filtering after the top k gives
    assert len(vectors) == 20_000


@pytest.mark.needs_dblink
def test_hybrid_finds_what_only_keywords_find_and_what_only_vectors_find(
    articles: psycopg.Connection, db_url: str, lane_encoders: EncoderCache
) -> None:
    with running_lane(db_url, lane_encoders):
        _hybrid(articles)


def _hybrid(conn: psycopg.Connection) -> None:
    # A part number: no meaning for the encoder, an exact word for full-text search.
    rows = conn.execute(
        "SELECT pk, keyword_rank, vector_rank FROM vk.hybrid_search('articles', 'Zxqv-7', 3)"
    ).fetchall()
    by_pk = {r[0]: r for r in rows}
    assert "8" in by_pk and by_pk["8"][1] == 1
    # A paraphrase that shares no word with its answer.
    rows = conn.execute(
        "SELECT pk, keyword_rank, vector_rank FROM vk.hybrid_search('articles', 'fermented loaf culture', 3)"
    ).fetchall()
    assert rows[0][0] == "2" and rows[0][1] is None and rows[0][2] == 1
    # Each row once; filters apply to both lists; weights of 0 leave one list.
    rows = conn.execute("SELECT pk FROM vk.hybrid_search('articles', 'python index', 8)").fetchall()
    assert len(rows) == len({r[0] for r in rows})
    rows = conn.execute(
        "SELECT pk FROM vk.hybrid_search('articles', 'python index', 8, filter => '{\"tenant\": 3}')"
    ).fetchall()
    assert {r[0] for r in rows} <= {"5", "6"}
    keyword_only = conn.execute(
        "SELECT vector_rank FROM vk.hybrid_search('articles', 'index', 8, vector_weight => 0)"
    ).fetchall()
    assert keyword_only and all(r[0] is None for r in keyword_only)
    with pytest.raises(errors.InvalidParameterValue, match="weights"):
        conn.execute("SELECT * FROM vk.hybrid_search('articles', 'x', 3, keyword_weight => 0, vector_weight => 0)")


# 'NaN' compares above every number in PostgreSQL, so a "weight < 0" check let it through, and
# with it NaN and infinite scores. (NULL is the collection's setting: tests/test_bm25.py.)
BAD_WEIGHTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf"), "-1": -1.0}


def test_hybrid_refuses_weights_that_are_not_finite_numbers_at_least_0(
    conn: psycopg.Connection, login: Callable[[str], str]
) -> None:
    conn.execute("CREATE TABLE articles (id int PRIMARY KEY, body text)")
    conn.execute("SELECT vk.attach('articles', 'id', 'body')")
    conn.execute("GRANT SELECT ON articles TO vk_app")
    with psycopg.connect(login("vk_app"), autocommit=True) as app:
        for weight in ("keyword_weight", "vector_weight"):
            for shown, bad in BAD_WEIGHTS.items():
                with pytest.raises(errors.InvalidParameterValue) as refused:
                    app.execute(f"SELECT * FROM vk.hybrid_search('articles', 'bread', 3, {weight} => %s)", (bad,))
                assert refused.value.diag.message_primary == f"vectorkeep: {weight} => {shown} is not a weight"
                assert "finite numbers >= 0" in (refused.value.diag.message_hint or "")
