"""BM25 keyword search in the database: the ranking of a reference implementation (bm25s) fed the
same words, statistics that stay a recount of the stored text under every kind of write, exact
results however far the norm the impacts were computed with is from the mean, the row security of
the words, and hybrid search's settings per collection (set, tuned, used)."""

import threading
from collections.abc import Callable
from typing import Any

import bm25s
import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

from bench.relevance import pydoc_set
from helpers import drain, one, running_lane
from vectorkeep.sql import query
from vectorkeep.workers.encoder_cache import EncoderCache

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _load(conn: psycopg.Connection, table: str, documents: list[str]) -> None:
    """An attached table whose stored text is `documents` (keys 0, 1, ...), written to vk.embeddings
    in one statement as a worker writes rows, with random vectors: only the words count here; each
    row's metadata says whether its key is odd."""
    conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, body text)")
    conn.execute("SELECT vk.attach(%s, 'id', 'body')", (table,))
    conn.execute(
        "INSERT INTO vk.embeddings (collection_id, pk, model_id, chunk, start_char, end_char, embedding, body, "
        "                           text_sha256, truncated, metadata) "
        "SELECT vk.collection_id(%(t)s), (d.i - 1)::text, (vk.model('minilm@1')).id, 0, 0, length(d.body), "
        "       ARRAY(SELECT random() FROM generate_series(1, 384 + 0 * d.i))::real[]::vector, d.body, "
        "       sha256(convert_to(d.body, 'UTF8')), false, jsonb_build_object('odd', d.i %% 2 = 0) "
        "FROM unnest(%(docs)s::text[]) WITH ORDINALITY d(body, i)",
        {"t": table, "docs": documents},
    )


def _words(conn: psycopg.Connection, texts: list[str]) -> list[list[str]]:
    """Each text's words as the english configuration makes them, every occurrence: what the
    reference is fed (taken from to_tsvector, not from vectorkeep's tables)."""
    rows = conn.execute(
        "SELECT d.i, coalesce((SELECT array_agg(w.lexeme ORDER BY w.lexeme) "
        "                      FROM unnest(to_tsvector('english', d.body)) w, "
        "                           generate_series(1, cardinality(w.positions))), '{}') "
        "FROM unnest(%s::text[]) WITH ORDINALITY d(body, i) ORDER BY d.i",
        (texts,),
    ).fetchall()
    return [list(words) for _, words in rows]


def _bm25(
    conn: psycopg.Connection, collection: str, text: str, depth: int, filter: Jsonb | None = None
) -> list[tuple[str, float]]:
    rows = conn.execute(
        "SELECT k.pk, k.score FROM vk._keyword_bm25(vk._collection(%(c)s), vk._collection_model(vk._collection(%(c)s), "
        "NULL), %(q)s, %(depth)s, %(filter)s) k ORDER BY k.rank",
        {"c": collection, "q": text, "depth": depth, "filter": filter},
    ).fetchall()
    return [(pk, score) for pk, score in rows]


def test_bm25_ranks_as_the_reference_implementation_fed_the_same_words(conn: psycopg.Connection) -> None:
    documents, labelled = pydoc_set()
    _load(conn, "topics", documents)
    corpus = _words(conn, documents)
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene", dtype="float64")
    reference.index(corpus, show_progress=False)
    vocabulary = set(reference.vocab_dict)
    queries = list(labelled)
    same_top10 = 0
    # How each query was answered: by bounds from the words' best postings, or from all of them.
    answered: list[str] = []
    conn.add_notice_handler(lambda notice: answered.append(notice.message_primary or ""))
    conn.execute("SET client_min_messages = debug1")
    for text, words in zip(queries, _words(conn, queries), strict=True):
        terms = sorted(set(words) & vocabulary)
        scores = reference.get_scores(terms) if terms else []
        expected = sorted(((-s, str(i)) for i, s in enumerate(scores) if s > 0), key=lambda x: x)
        for depth, odd in ((10, False), (50, False), (10, True)):
            got = _bm25(conn, "topics", text, depth, Jsonb({"odd": True}) if odd else None)
            want = [(pk, -neg) for neg, pk in expected if not odd or int(pk) % 2][:depth]
            assert len(got) == len(want), (text, depth, odd)
            # Every score BM25's own, within 1e-6 relative, whatever the order of equal ones.
            for pk, score in got:
                assert score == pytest.approx(scores[int(pk)], rel=1e-6), (text, pk)
            if depth == 10 and not odd:
                same_top10 += [pk for pk, _ in got] == [pk for pk, _ in want]
    assert same_top10 >= 0.95 * len(queries), f"the same top 10 on {same_top10} of {len(queries)} queries"
    ways = {"bounds": sum("could enter" in m for m in answered), "all": sum("every chunk" in m for m in answered)}
    assert ways["bounds"] > 0 and ways["all"] > 0, ways


RECOUNT = """
SELECT e.collection_id, e.model_id, w.lexeme, count(*), sum(cardinality(w.positions))
FROM vk.embeddings e JOIN vk.collections c ON c.id = e.collection_id, unnest(to_tsvector(c.text_search, e.body)) w
GROUP BY 1, 2, 3
UNION ALL
SELECT e.collection_id, e.model_id, '', count(*),
       sum(coalesce((SELECT sum(cardinality(w.positions)) FROM unnest(to_tsvector(c.text_search, e.body)) w), 0))
FROM vk.embeddings e JOIN vk.collections c ON c.id = e.collection_id
GROUP BY 1, 2
ORDER BY 1, 2, 3
"""
KEPT = """
SELECT collection_id, model_id, term, sum(chunks), sum(words) FROM vk.keyword_stats
GROUP BY 1, 2, 3 HAVING sum(chunks) <> 0 ORDER BY 1, 2, 3
"""
POSTINGS = """
SELECT e.collection_id, e.model_id, e.pk, e.chunk, w.lexeme, cardinality(w.positions)
FROM vk.embeddings e JOIN vk.collections c ON c.id = e.collection_id, unnest(to_tsvector(c.text_search, e.body)) w
ORDER BY 1, 2, 3, 4, 5
"""


def assert_counts_are_a_recount(conn: psycopg.Connection) -> None:
    assert conn.execute(KEPT).fetchall() == conn.execute(RECOUNT).fetchall()
    kept = "SELECT collection_id, model_id, pk, chunk, term, tf FROM vk.keyword_postings ORDER BY 1, 2, 3, 4, 5"
    assert conn.execute(kept).fetchall() == conn.execute(POSTINGS).fetchall()


def test_statistics_stay_a_recount_under_every_write(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text, tag text)")
    conn.execute("SELECT vk.attach('notes', 'id', 'body', metadata => 'jsonb_build_object(''tag'', tag)')")
    texts = [
        "The index scan reads the index and then the table.",
        "A sequential scan reads every page of the table, the whole table.",
        "Vacuum frees the space that dead rows take.",
        "The planner picks the cheapest plan it can find.",
        "",
        "the and of",  # stop words only: a chunk of no words
    ]
    conn.cursor().executemany("INSERT INTO notes VALUES (%s, %s, 'a')", list(enumerate(texts)))
    drain(db_url, encoders)
    assert one(conn, "SELECT count(*) FROM vk.embeddings") == 5  # the empty text keeps no vector
    assert_counts_are_a_recount(conn)
    # Folded after the batch: one row per word.
    assert (
        one(
            conn,
            "SELECT count(*) FROM (SELECT FROM vk.keyword_stats "
            "                      GROUP BY collection_id, model_id, term HAVING count(*) > 1) x",
        )
        == 0
    )

    conn.execute(
        "UPDATE notes SET body = 'An index only scan skips the table when the page is all visible.' WHERE id = 0"
    )
    conn.execute("UPDATE notes SET tag = 'b' WHERE id = 1")  # metadata only: same words
    conn.execute("DELETE FROM notes WHERE id = 2")
    conn.execute("INSERT INTO notes VALUES (10, 'Autovacuum runs vacuum and analyze by itself.', 'c')")
    drain(db_url, encoders)
    assert_counts_are_a_recount(conn)

    # Chunking: each row's chunks replace its whole-text chunk.
    conn.execute("SELECT vk.set_chunking('notes', 'sentences', 8)")
    conn.execute(
        "INSERT INTO notes VALUES (11, 'One sentence here. Another one there. And a third, about scans.', 'c')"
    )
    drain(db_url, encoders)
    assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE chunk > 0") > 0
    assert_counts_are_a_recount(conn)

    # Re-embedding with a second version: its own counts beside the first's.
    conn.execute(
        query("register_model"),
        {"name": "minilm", "kind": "sentence-transformers", "dim": 384, "distance": "cosine",
         "params": Jsonb({"source": MINILM}), "fingerprint": None},
    )  # fmt: skip
    conn.execute("SELECT vk.add_model('notes', 'minilm@2')")
    drain(db_url, encoders)
    assert one(conn, "SELECT count(DISTINCT model_id) FROM vk.keyword_stats") == 2
    assert_counts_are_a_recount(conn)

    # Another text-search configuration: other words (stop words kept), counted again.
    before = one(conn, "SELECT count(*) FROM vk.keyword_postings")
    conn.execute("SELECT vk.set_text_search('notes', 'simple')")
    assert one(conn, "SELECT count(*) FROM vk.keyword_postings") > before
    assert_counts_are_a_recount(conn)

    # A DBA's own writes, by hand, and the collection detached: nothing left behind.
    conn.execute("UPDATE vk.embeddings SET body = body || ' planner' WHERE pk = '3'")
    conn.execute("DELETE FROM vk.embeddings WHERE pk = '1'")
    assert_counts_are_a_recount(conn)
    conn.execute("SELECT vk.detach('notes')")
    assert one(conn, "SELECT count(*) FROM vk.keyword_postings") == 0
    assert one(conn, "SELECT count(*) FROM (" + KEPT + ") x") == 0


def test_results_are_exact_however_far_the_norm_is_from_the_mean(conn: psycopg.Connection) -> None:
    documents, _ = pydoc_set()
    _load(conn, "topics", documents[:400])
    queries = ["the function returns a value", "class attribute lookup", "exception raised in the try clause"]
    exact = {q: _bm25(conn, "topics", q, 30) for q in queries}
    assert all(exact.values())
    mean = one(conn, "SELECT sum(words)::float / sum(chunks) FROM vk.keyword_stats WHERE term = ''")
    assert one(conn, "SELECT norm FROM vk.keyword_norms") == pytest.approx(mean)
    # As if the first chunks written had been far shorter, or far longer, than the rest.
    for factor in (0.2, 5.0):
        conn.execute("UPDATE vk.keyword_norms SET norm = %s", (mean * factor,))
        conn.execute("UPDATE vk.keyword_postings SET impact = vk._bm25_weight(tf, length, %s)", (mean * factor,))
        assert {q: _bm25(conn, "topics", q, 30) for q in queries} == exact
    # The fold re-normalises a norm 5x off (more than 25 %), and the answers stay.
    one(conn, "SELECT vk.compact_keyword_stats_v1()")
    assert one(conn, "SELECT norm FROM vk.keyword_norms") == pytest.approx(mean)
    assert {q: _bm25(conn, "topics", q, 30) for q in queries} == exact


def test_a_role_reads_the_words_of_the_collections_whose_table_it_may_read(
    conn: psycopg.Connection, login: Callable[[str], str]
) -> None:
    _load(conn, "secret", ["The launch code is in the safe.", "The safe is behind the painting."])
    app = login("vk_app")
    with psycopg.connect(app, autocommit=True) as reader:
        assert one(reader, "SELECT count(*) FROM vk.keyword_postings") == 0
        assert one(reader, "SELECT count(*) FROM vk.keyword_stats") == 0
        with pytest.raises(errors.InsufficientPrivilege, match="may not SELECT"):
            reader.execute("SELECT * FROM vk.hybrid_search('secret', 'launch code', 3, vector_weight => 0)")
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute("SELECT vk.compact_keyword_stats_v1()")
    conn.execute("GRANT SELECT ON secret TO vk_app")
    with psycopg.connect(app, autocommit=True) as reader:
        assert one(reader, "SELECT count(*) FROM vk.keyword_postings") > 0
        rows = reader.execute("SELECT pk FROM vk.hybrid_search('secret', 'launch code', 3, vector_weight => 0)")
        assert [r[0] for r in rows] == ["0"]


def _setting(conn: psycopg.Connection, collection: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT version, fusion, keyword_weight, vector_weight FROM vk.hybrid_settings "
        "WHERE collection_id = vk.collection_id(%s) ORDER BY version DESC LIMIT 1",
        (collection,),
    ).fetchone()
    assert row is not None
    return dict(zip(("version", "fusion", "keyword_weight", "vector_weight"), row, strict=True))


def test_hybrid_settings_are_versions_per_collection_that_queries_leaving_them_null_use(
    conn: psycopg.Connection,
) -> None:
    _load(conn, "topics", ["The index scan reads the index.", "Vacuum frees space.", "The planner plans."])
    # Keyword only by the collection's setting: no worker needed, no vector rank.
    conn.execute("SELECT vk.set_hybrid_defaults('topics', 'rrf', 1, 0)")
    rows = conn.execute("SELECT pk, vector_rank, score FROM vk.hybrid_search('topics', 'index scan')").fetchall()
    assert [r[0] for r in rows] == ["0"] and rows[0][1] is None and rows[0][2] == pytest.approx(1 / 61)
    conn.execute("SELECT vk.set_hybrid_defaults('topics', 'convex', 2, 0)")
    assert _setting(conn, "topics") == {"version": 2, "fusion": "convex", "keyword_weight": 2, "vector_weight": 0}
    rows = conn.execute("SELECT pk, score FROM vk.hybrid_search('topics', 'index scan')").fetchall()
    assert rows == [("0", pytest.approx(2.0))]
    for bad, message in (
        ("SELECT vk.set_hybrid_defaults('topics', 'rfr', 1, 1)", "is not a fusion"),
        ("SELECT vk.set_hybrid_defaults('topics', 'convex', 0, 0)", "both 0"),
        ("SELECT * FROM vk.hybrid_search('topics', 'x', fusion => 'sum')", "is not a fusion"),
        ("SELECT vk.tune_hybrid('topics', '{}')", "not a list of labelled queries"),
        ('SELECT vk.tune_hybrid(\'topics\', \'[{"query": "scan", "relevent": ["0"]}]\')', "not a labelled query"),
        ('SELECT vk.tune_hybrid(\'topics\', \'[{"query": "scan", "relevant": []}]\')', "not a labelled query"),
        ('SELECT vk.tune_hybrid(\'topics\', \'[{"query": "scan", "relevant": ["42"]}]\')', "no row of collection"),
    ):
        with pytest.raises(errors.InvalidParameterValue, match=message) as refused:
            conn.execute(bad)
        assert refused.value.diag.message_hint
    assert _setting(conn, "topics")["version"] == 2


@pytest.mark.needs_dblink
def test_tune_hybrid_records_the_best_setting_it_tried(
    conn: psycopg.Connection, db_url: str, lane_encoders: EncoderCache
) -> None:
    documents, labelled = pydoc_set()
    _load(conn, "topics", documents[:300])
    held = [(q, sorted(str(i) for i in relevant if i < 300)) for q, relevant in labelled.items()]
    queries = [{"query": q, "relevant": r} for q, r in held if r][:8]
    with running_lane(db_url, lane_encoders):
        version, fusion, ndcg = conn.execute("SELECT version, fusion, ndcg_at_10 FROM vk.tune_hybrid('topics', %s)",
                                             (Jsonb(queries),)).fetchone()  # type: ignore[misc]  # fmt: skip
    count, tried = conn.execute("SELECT queries, tried FROM vk.hybrid_settings WHERE version = %s",
                                (version,)).fetchone()  # type: ignore[misc]  # fmt: skip
    assert version == 1 and count == len(queries) and len(tried) == 22
    assert ndcg == max(t["ndcg_at_10"] for t in tried) and fusion in ("convex", "rrf")
    # The vectors here are random: the best is at least as good as keyword alone.
    keyword_only = next(t for t in tried if t["vector_weight"] == 0 and t["fusion"] == "convex")
    assert ndcg >= keyword_only["ndcg_at_10"] > 0


@pytest.mark.needs_dblink
def test_both_lists_of_a_hybrid_query_are_read_through_an_index(
    conn: psycopg.Connection, db_url: str, lane_encoders: EncoderCache
) -> None:
    """What the README shows: auto_explain's plans of the statements vk.hybrid_search runs."""
    documents, _ = pydoc_set()
    _load(conn, "topics", documents * 2)  # enough rows for the planner to prefer the HNSW index
    conn.execute("ANALYZE vk.embeddings, vk.keyword_postings, vk.keyword_stats")
    hnsw = one(conn, "SELECT vk._hnsw_index_name(vk.collection_id('topics'), (vk.model('minilm@1')).id)")
    plans: list[str] = []
    conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
    with running_lane(db_url, lane_encoders):
        conn.execute("SELECT vk.embed('minilm@1', 'the index of a sequence')")
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET client_min_messages = log")
        rows = conn.execute("SELECT * FROM vk.hybrid_search('topics', 'the index of a sequence', 10)").fetchall()
    assert len(rows) == 10
    text = "\n".join(plans)
    assert f"Index Scan using {hnsw}" in text
    # The words' postings by impact (the chunks that could enter are then looked up by the primary
    # key; where every posting of the words reads less, the same index by word).
    assert "Index Only Scan using keyword_postings_impact_idx" in text
    # No statement of either list reads a whole table.
    assert "Seq Scan on embeddings" not in text and "Seq Scan on keyword_postings" not in text


def test_concurrent_writers_folds_and_a_killed_writer_leave_the_counts_a_recount(
    conn: psycopg.Connection, login: Callable[[str], str]
) -> None:
    """Worker logins writing, rewriting and deleting chunks of one collection at once (common words in
    every chunk), a fold running in a loop beside them, and a writer killed in the middle of its
    transaction: every count is still a recount of what was committed."""
    documents, _ = pydoc_set()
    _load(conn, "topics", ["a first chunk about the function and its value"])
    ids = conn.execute("SELECT vk.collection_id('topics'), (vk.model('minilm@1')).id").fetchone()
    assert ids is not None
    vector = "[" + ",".join(["0.05"] * 384) + "]"
    put = (
        "SELECT vk.put_chunk_v1(%s::bigint, %s::text, %s::bigint, 0, 0, 10, %s::vector, %s::text, "
        "sha256(convert_to(%s, 'UTF8')), false)"
    )
    worker = login("vk_worker")
    stop = threading.Event()
    errors_seen: list[BaseException] = []

    def write(lane: int) -> None:
        try:
            with psycopg.connect(worker) as w:
                for i in range(lane, 240, 4):
                    body = f"{documents[i]} the function returns a value"
                    w.execute(put, (ids[0], str(i % 60), ids[1], vector, body, body))  # rewrites: 60 keys, 4 texts each
                    if i % 7 == 0:
                        w.execute(
                            "DELETE FROM vk.embeddings WHERE collection_id = %s AND pk = %s", (ids[0], str(i % 50))
                        )
                    w.commit()
        except BaseException as exc:  # surfaced below
            errors_seen.append(exc)

    def fold() -> None:
        with psycopg.connect(worker, autocommit=True) as f:
            while not stop.is_set():
                f.execute("SELECT vk.compact_keyword_stats_v1()")

    threads = [threading.Thread(target=write, args=(lane,)) for lane in range(4)]
    folder = threading.Thread(target=fold)
    for t in [*threads, folder]:
        t.start()
    # A writer killed with chunks written and not committed: they never count.
    with psycopg.connect(worker) as doomed:
        doomed.execute(put, (ids[0], "killed", ids[1], vector, "words nobody commits", "x"))
        pid = doomed.info.backend_pid
        one(conn, "SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            doomed.execute("SELECT 1")
    for t in threads:
        t.join(timeout=120)
    stop.set()
    folder.join(timeout=60)
    assert not errors_seen, errors_seen
    assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE pk = 'killed'") == 0
    assert_counts_are_a_recount(conn)
    one(conn, "SELECT vk.compact_keyword_stats_v1()")
    assert_counts_are_a_recount(conn)
