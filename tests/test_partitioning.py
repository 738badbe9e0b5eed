"""vk.embeddings partitioned by model version with docs/partition-embeddings.sql (README, "Beyond one machine").

The script a DBA runs converts the table in place; search, similarity and
recovery answer exactly as before, each (collection, model) HNSW index lives on
its model's partition and the planner uses it, and the current definitions
still apply on top (every upgrade re-applies them).
"""

from pathlib import Path

import numpy as np
import psycopg
import pytest

from helpers import one
from vectorkeep import sql
from vectorkeep.db import catalogue, definitions

SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "partition-embeddings.sql"
DIM = 24
ROWS = 1500


def _vectors(conn: psycopg.Connection, collection: str, model: str, dim: int) -> None:
    """Vectors for every row of `collection`, written directly as an external encoder would."""
    conn.execute(
        f"""
        INSERT INTO vk.embeddings (collection_id, pk, model_id, embedding, body, text_sha256)
        SELECT vk.collection_id(%s), s.id::text, (vk.model(%s)).id,
               (SELECT array_agg(sin(s.id * 13 + d * {dim})) FROM generate_series(1, {dim}) d)::vector,
               s.body, sha256(convert_to(s.body, 'UTF8'))
        FROM synth s
        """,
        (collection, model),
    )


@pytest.fixture
def two_versions(conn: psycopg.Connection) -> psycopg.Connection:
    """Collection `synth` embedded with two external versions (two partitions), 600 rows each."""
    conn.execute("CREATE TABLE synth (id int PRIMARY KEY, body text)")
    conn.execute(f"INSERT INTO vk.models (name, version, kind, dim) VALUES ('ext', 1, 'external', {DIM})")
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('ext', 2, 'external', 8)")
    conn.execute("SELECT vk.attach('synth', 'id', 'body', 'ext@1')")
    conn.execute("SELECT vk.add_model('synth', 'ext@2')")
    conn.execute(f"INSERT INTO synth SELECT g, 'row ' || g FROM generate_series(1, {ROWS}) g")
    _vectors(conn, "synth", "ext@1", DIM)
    _vectors(conn, "synth", "ext@2", 8)
    conn.execute("DELETE FROM vk.queue")
    conn.execute("ANALYZE vk.embeddings")
    return conn


QUERIES = {
    "search": "SELECT pk, body, distance FROM vk.search('synth', %(q)s, 10)",
    "search_v2": "SELECT pk, body, distance FROM vk.search('synth', %(q8)s, 10, 'ext@2')",
    "similar": "SELECT pk, body, distance FROM vk.similar('synth', '77', 10)",
    "recover": "SELECT collection, pk, body, similarity FROM vk.recover(%(q)s, 'ext@1', 5)",
}


def _answers(conn: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    rng = np.random.default_rng(7)
    params = {"q": rng.standard_normal(DIM).astype(np.float32), "q8": rng.standard_normal(8).astype(np.float32)}
    # The widest candidate list, so that HNSW over 600 rows is exact and two builds agree.
    conn.execute("SET hnsw.ef_search = 1000")
    # Rows at the same distance (to 5 places) may come in either order: in key order here.
    return {
        name: sorted(
            (tuple(round(x, 5) if isinstance(x, float) else x for x in row) for row in conn.execute(q, params)),
            key=lambda row: (row[-1], row[0]),
        )
        for name, q in QUERIES.items()
    }


def _plan(conn: psycopg.Connection, model: str) -> tuple[str, str]:
    sql_text, index = conn.execute(
        """
        SELECT vk._nearest_sql(c, m, false, false, false), cm.index_name
        FROM vk.collections c, vk.model(%s) m, vk.collection_models cm
        WHERE c.name = 'synth' AND cm.collection_id = c.id AND cm.model_id = m.id
        """,
        (model,),
    ).fetchone()  # type: ignore[misc]
    query = np.ones(DIM if model == "ext@1" else 8, dtype=np.float32)
    with conn.transaction():
        conn.execute(f"PREPARE knn(vector, int) AS {sql_text}")
        with psycopg.ClientCursor(conn) as cur:  # EXPLAIN takes no server-side parameters
            plan = "\n".join(r[0] for r in cur.execute("EXPLAIN EXECUTE knn(%s, 10)", (query,)))
        conn.execute("DEALLOCATE knn")
    return plan, index


def test_partitioned_embeddings_answer_as_before(two_versions: psycopg.Connection) -> None:
    conn = two_versions
    before = _answers(conn)
    assert all(before.values())
    conn.execute("RESET hnsw.ef_search")
    index = _plan(conn, "ext@1")[1]
    assert f"Index Scan using {index} on embeddings " in _plan(conn, "ext@1")[0]
    conn.execute(SCRIPT.read_text())

    assert one(conn, "SELECT relkind FROM pg_class WHERE oid = 'vk.embeddings'::regclass") == "p"
    partitions = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'vk.embeddings'::regclass ORDER BY 1"
    ).fetchall()
    ids = {m: one(conn, "SELECT (vk.model(%s)).id", (m,)) for m in ("minilm@1", "ext@1", "ext@2")}
    assert sorted(partitions) == sorted(
        [(f"embeddings_m{i}", f"FOR VALUES IN ('{i}')") for i in ids.values()] + [("embeddings_default", "DEFAULT")]
    )
    counts: dict[str, int] = dict(
        conn.execute("SELECT tableoid::regclass::text, count(*) FROM vk.embeddings GROUP BY 1").fetchall()
    )
    assert counts == {f"vk.embeddings_m{ids['ext@1']}": ROWS, f"vk.embeddings_m{ids['ext@2']}": ROWS}

    assert _answers(conn) == before
    conn.execute("RESET hnsw.ef_search")
    for model in ("ext@1", "ext@2"):
        plan, index = _plan(conn, model)
        assert f"Index Scan using {index} on embeddings_m{ids[model]}" in plan, plan

    # What the table carried came along: triggers (a wrong dimension is refused), row security, grants.
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute(
            "INSERT INTO vk.embeddings (collection_id, pk, model_id, embedding, body, text_sha256) "
            "VALUES (vk.collection_id('synth'), '1', (vk.model('ext@2')).id, '[1,2,3]', 'x', '\\x00')"
        )
    assert one(conn, "SELECT relrowsecurity FROM pg_class WHERE oid = 'vk.embeddings'::regclass") is True
    assert one(conn, "SELECT count(*) FROM pg_policies WHERE schemaname = 'vk' AND tablename = 'embeddings'") == 2
    assert one(conn, "SELECT has_table_privilege('vk_app', 'vk.embeddings', 'SELECT')") is True
    assert one(conn, "SELECT has_table_privilege('vk_app', 'vk.embeddings', 'INSERT')") is False
    assert one(conn, "SELECT count(*) FROM vk.status WHERE collection = 'synth' AND embedded = %s", (ROWS,)) == 2

    # Every upgrade re-applies the current definitions: they still apply to the partitioned table.
    with catalogue.names_printed_for(conn, catalogue.vector_schema(conn)), conn.transaction():
        for path in sql.definition_files():
            conn.execute(definitions.fill_vector_schema(sql.read(path), catalogue.vector_schema(conn)).encode())
    assert _answers(conn) == before

    # A version registered afterwards lands in the default partition and is searched.
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('ext', 3, 'external', 4)")
    conn.execute("SELECT vk.add_model('synth', 'ext@3')")
    _vectors(conn, "synth", "ext@3", 4)
    assert one(conn, "SELECT count(*) FROM vk.embeddings_default") == ROWS
    assert one(conn, "SELECT count(*) FROM vk.search('synth', '[1,0,0,0]', 5, 'ext@3')") == 5

    # Running the script again changes nothing.
    conn.execute(SCRIPT.read_text())
    assert _answers(conn) == before
