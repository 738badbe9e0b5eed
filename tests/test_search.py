"""vk.search, vk.similar and vk.recover on a corpus whose answers are known."""

import numpy as np
import psycopg
import pytest

from helpers import drain
from vectorkeep.db import registry
from vectorkeep.workers.encoder_cache import EncoderCache

CORPUS = {
    "cat1": "The cat is sleeping on the warm windowsill.",
    "cat2": "A kitten curled up and napped in the sun.",
    "bank1": "The central bank raised interest rates again.",
    "bank2": "Mortgage costs climb as lenders follow the rate hike.",
    "code1": "Python lists support append, pop and slicing.",
    "code2": "In Python you can slice a list and append items to it.",
    "food1": "Knead the dough, let it rise, then bake the bread.",
}


@pytest.fixture
def corpus(conn: psycopg.Connection, db_url: str, encoders: EncoderCache) -> psycopg.Connection:
    conn.execute("CREATE TABLE facts (key text PRIMARY KEY, body text)")
    conn.execute("SELECT vk.attach('facts', 'key', 'body')")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO facts VALUES (%s, %s)", list(CORPUS.items()))
    drain(db_url, encoders)
    return conn


def encode(conn: psycopg.Connection, encoders: EncoderCache, text: str) -> np.ndarray:
    return encoders.get(conn, registry.by_spec(conn, "minilm@1")).encode([text])[0]


def test_search_returns_known_neighbours_nearest_first(corpus: psycopg.Connection, encoders: EncoderCache) -> None:
    query = encode(corpus, encoders, "a small cat takes a nap")
    rows = corpus.execute("SELECT pk, body, distance FROM vk.search('facts', %s, 3)", (query,)).fetchall()
    assert {rows[0][0], rows[1][0]} == {"cat1", "cat2"}
    assert rows[0][1] == CORPUS[rows[0][0]]
    distances = [r[2] for r in rows]
    assert distances == sorted(distances)
    # Naming the model explicitly gives the same answer.
    named = corpus.execute("SELECT pk FROM vk.search('facts', %s, 3, 'minilm@1')", (query,)).fetchall()
    assert [r[0] for r in named] == [r[0] for r in rows]


def test_similar_excludes_the_row_itself(corpus: psycopg.Connection) -> None:
    rows = corpus.execute("SELECT pk FROM vk.similar('facts', 'code1', 2)").fetchall()
    assert rows[0][0] == "code2"
    assert "code1" not in [r[0] for r in rows]
    assert len(rows) == 2


def test_recover_of_a_stored_vector_returns_its_text_first(corpus: psycopg.Connection, encoders: EncoderCache) -> None:
    vector = corpus.execute(
        "SELECT embedding FROM vk.embeddings WHERE pk = 'bank2' AND collection_id = vk.collection_id('facts')"
    ).fetchone()
    assert vector is not None
    rows = corpus.execute("SELECT * FROM vk.recover(%s, 'minilm', 3)", (vector[0],)).fetchall()
    collection, pk, body, similarity = rows[0]
    assert (collection, pk, body) == ("facts", "bank2", CORPUS["bank2"])
    assert similarity == pytest.approx(1.0, abs=1e-5)
    assert rows[1][1] == "bank1"


def test_recover_searches_every_collection_of_the_model(
    corpus: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    corpus.execute("INSERT INTO vk.documents (body) VALUES (%s)", (CORPUS["food1"],))
    drain(db_url, encoders)
    query = encode(corpus, encoders, CORPUS["food1"])
    rows = corpus.execute("SELECT collection, pk FROM vk.recover(%s, 'minilm', 2)", (query,)).fetchall()
    assert {r[0] for r in rows} == {"facts", "documents"}
    only = corpus.execute("SELECT collection FROM vk.recover(%s, 'minilm', 2, 'documents')", (query,)).fetchall()
    assert [r[0] for r in only] == ["documents"]


def _synthetic(conn: psycopg.Connection, n: int, dim: int, name: str) -> None:
    """n random vectors for a collection under an external model of its own dimension."""
    conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, body text)")
    conn.execute(
        "INSERT INTO vk.models (name, version, kind, dim, distance) VALUES (%s, 1, 'external', %s, 'cosine')",
        (f"{name}_ext", dim),
    )
    conn.execute(f"SELECT vk.attach('{name}', 'id', 'body', '{name}_ext@1')")
    conn.execute(f"INSERT INTO {name} SELECT g, 'row ' || g FROM generate_series(1, {n}) g")
    # Vectors written directly, as an external encoder would.
    conn.execute(
        f"""
        INSERT INTO vk.embeddings (collection_id, pk, model_id, embedding, body, text_sha256)
        SELECT c.id, g::text, c.default_model_id,
               (SELECT array_agg(random() - 0.5) FROM generate_series(1, {dim}) WHERE g > 0)::vector,
               'row ' || g, sha256(convert_to('row ' || g, 'UTF8'))
        FROM vk.collections c, generate_series(1, {n}) g WHERE c.name = '{name}'
        """
    )
    conn.execute("DELETE FROM vk.queue")
    conn.execute("ANALYZE vk.embeddings")


def test_search_query_uses_the_partial_hnsw_index(corpus: psycopg.Connection) -> None:
    _synthetic(corpus, 2000, 384, "synth")
    sql, index = corpus.execute(
        """
        SELECT vk._nearest_sql(c, m, false, false, false), cm.index_name
        FROM vk.collections c JOIN vk.models m ON m.id = c.default_model_id
        JOIN vk.collection_models cm ON cm.collection_id = c.id AND cm.model_id = m.id
        WHERE c.name = 'synth'
        """
    ).fetchone()  # type: ignore[misc]
    query = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    with corpus.transaction():
        corpus.execute(f"PREPARE knn(vector, int) AS {sql}")
        with psycopg.ClientCursor(corpus) as cur:  # EXPLAIN takes no server-side parameters
            plan = "\n".join(r[0] for r in cur.execute("EXPLAIN EXECUTE knn(%s, 10)", (query,)))
        corpus.execute("DEALLOCATE knn")
    assert f"Index Scan using {index}" in plan, plan

    # The function runs that same query; with a wide candidate list it agrees
    # with exact search (random uniform vectors are HNSW's hardest case).
    corpus.execute("SET hnsw.ef_search = 200")
    got = corpus.execute("SELECT pk FROM vk.search('synth', %s, 10)", (query,)).fetchall()
    exact = corpus.execute(
        """
        SELECT pk FROM vk.embeddings e
        WHERE e.collection_id = (SELECT id FROM vk.collections WHERE name = 'synth')
        ORDER BY e.embedding <=> %s LIMIT 10
        """,
        (query,),
    ).fetchall()
    assert got[0] == exact[0]
    assert len(set(got) & set(exact)) >= 9


def test_keyword_query_weighs_the_query_words_once(corpus: psycopg.Connection) -> None:
    """The word weights are one materialized CTE: inlined, PostgreSQL recomputed them for every matching row,
    each time over every match (quadratic in the matches: seconds a query at 10,000 rows)."""
    sql = corpus.execute(
        "SELECT vk._keyword_sql(c, m) FROM vk.collections c JOIN vk.models m ON m.id = c.default_model_id "
        "WHERE c.name = 'documents'"
    ).fetchone()[0]  # type: ignore[index]
    with corpus.transaction():
        corpus.execute(f"PREPARE kw(vk.collections, vk.models, vector, integer, jsonb, text) AS {sql}")
        plan = "\n".join(
            r[0] for r in corpus.execute("EXPLAIN EXECUTE kw(NULL, NULL, NULL, 50, NULL, 'functions and arguments')")
        )
        corpus.execute("DEALLOCATE kw")
    assert "CTE weights" in plan, plan
    assert plan.count("CTE Scan on weights") == 1, plan


def test_two_model_versions_never_mix(corpus: psycopg.Connection) -> None:
    _synthetic(corpus, 50, 8, "small")
    # Same collection, a second version of another dimension.
    corpus.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('small_ext', 2, 'external', 4)")
    corpus.execute("SELECT vk.add_model('small', 'small_ext@2')")
    corpus.execute(
        """
        INSERT INTO vk.embeddings (collection_id, pk, model_id, embedding, body, text_sha256)
        SELECT e.collection_id, e.pk, (vk.model('small_ext@2')).id, '[1,0,0,0]', e.body, e.text_sha256
        FROM vk.embeddings e WHERE e.collection_id = (SELECT id FROM vk.collections WHERE name = 'small')
        """
    )
    v1 = corpus.execute(
        "SELECT count(*) FROM vk.search('small', %s, 100, 'small_ext@1')",
        ("[" + ",".join(["0.1"] * 8) + "]",),
    )
    assert v1.fetchone() == (50,)
    v2 = corpus.execute("SELECT count(*) FROM vk.search('small', '[1,0,0,0]', 100, 'small_ext@2')").fetchone()
    assert v2 == (50,)
    # A 4-d query against the 8-d default is refused, not silently compared.
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        corpus.execute("SELECT * FROM vk.search('small', '[1,0,0,0]')")
