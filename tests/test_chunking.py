"""Long text cut into chunks: offsets, search that returns rows, atomic replacement, bounded memory."""

import threading
import tracemalloc
from typing import Any

import psycopg
import pytest
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row

from helpers import assert_invariant, cli, drain, one, serve
from vectorkeep.db import registry
from vectorkeep.db.connect import connect
from vectorkeep.workers import chunking
from vectorkeep.workers.chunking import Chunking, chunks, encoder_spans, word_spans
from vectorkeep.workers.corpus import paragraphs
from vectorkeep.workers.encoder_cache import EncoderCache

TEXTS = [t for _, t in paragraphs()]


def minilm(conn: psycopg.Connection, encoders: EncoderCache) -> Any:
    return encoders.get(conn, registry.by_spec(conn, "minilm@1"))


def long_text(parts: range, last: int) -> str:
    """Real paragraphs, one after the other, ending with paragraph `last`."""
    return "\n\n".join([TEXTS[i] for i in parts] + [TEXTS[last]])


def exact_offsets(conn: psycopg.Connection, table: str) -> tuple[int, int]:
    """(chunks stored, chunks whose text is not the source text at their offsets).

    Compared here, each source text read once (Python's slices count characters, as substr does): substr
    on a toasted megabyte text decompresses it again for each of its thousands of chunks."""
    sources: dict[str, str | None] = dict(conn.execute(f"SELECT id::text, body FROM {table}").fetchall())
    stored = conn.execute(
        "SELECT e.pk, e.start_char, e.end_char, e.body FROM vk.embeddings e "
        "JOIN vk.collections c ON c.id = e.collection_id WHERE c.name = %s",
        (table,),
    ).fetchall()
    mine = [(sources[pk], start, end, body) for pk, start, end, body in stored if pk in sources]
    wrong = [1 for source, start, end, body in mine if source is None or start < 0 or source[start:end] != body]
    return len(mine), len(wrong)


def test_token_chunks_have_exact_offsets_and_overlap(conn: psycopg.Connection, encoders: EncoderCache) -> None:
    spans, window = encoder_spans(minilm(conn, encoders))
    assert window == 254  # all-MiniLM-L6-v2: 256 word pieces with [CLS] and [SEP]
    text = long_text(range(0, 12), 300)
    tokens = spans(text)
    size, overlap = 64, 16
    cut = list(chunks(text, Chunking("tokens", size, overlap), spans, window))
    assert len(cut) > 5
    for i, c in enumerate(cut):
        assert c.index == i and c.text == text[c.start : c.end]
        # Chunk i covers tokens [i * step, i * step + size): the overlap is exactly 16 tokens.
        first = i * (size - overlap)
        assert c.start == tokens[first][0]
        assert c.end == tokens[min(first + size, len(tokens)) - 1][1]
    assert cut[-1].end == tokens[-1][1]


def test_token_chunks_cross_tokenizer_windows_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tokenized a window at a time: chunks straddling a window's end are the same.
    text = " ".join(f"w{i}" for i in range(2000))
    whole = [(c.start, c.end) for c in chunks(text, Chunking("tokens", 50, 7), word_spans, 256)]
    monkeypatch.setattr(chunking, "WINDOW_CHARS", 333)
    windowed = [(c.start, c.end) for c in chunks(text, Chunking("tokens", 50, 7), word_spans, 256)]
    assert windowed == whole and len(whole) == 47


def test_sentence_and_markdown_chunks_keep_sentences_and_sections_whole() -> None:
    text = long_text(range(20, 30), 40)
    cut = list(chunks(text, Chunking("sentences", 80), word_spans, 256))
    assert len(cut) > 3
    for c in cut:
        assert c.text == text[c.start : c.end]
        assert len(word_spans(c.text)) <= 80
        # Ends at a sentence end (or where a sentence longer than the size was cut by tokens).
        assert c.text[-1] in ".!?:)\"'" or len(word_spans(c.text)) == 80 or c.end == len(text.rstrip())
    md = "# Install\nRun pip. Then run it.\n\n## Configure\nSet the URL.\n# Use\nSearch."
    sections = [c.text for c in chunks(md, Chunking("markdown", 200), word_spans, 256)]
    assert sections == ["# Install\nRun pip. Then run it.", "## Configure\nSet the URL.", "# Use\nSearch."]


def test_a_megabyte_row_is_chunked_in_bounded_memory(conn: psycopg.Connection, encoders: EncoderCache) -> None:
    spans, window = encoder_spans(minilm(conn, encoders))
    text = long_text(range(0, 400), 401)
    text = (text + "\n\n") * (1_200_000 // len(text) + 1)
    assert len(text) > 1_200_000
    tracemalloc.start()
    try:
        n, covered = 0, 0
        for c in chunks(text, Chunking("tokens", 254, 32), spans, window):
            n, covered = n + 1, c.end
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert covered == len(text.rstrip()) and n > 1000
    # One tokenizer window at a time: a few hundred kB, whatever the text's size
    # (all of its ~300k token spans at once would be tens of MB).
    assert peak < 3_000_000, peak


def make_articles(url: str, tables: tuple[str, ...], short: int) -> str:
    """The tables, each holding a long article (row 1) whose last paragraph is about something else and
    `short` short paragraphs; articles_whole attached without chunking, articles_cut with token chunks."""
    rows = [(1, long_text(range(0, 15), 300))] + [(i, TEXTS[100 + i]) for i in range(2, 2 + short)]
    with connect(url, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, body text)")
            conn.cursor().executemany(f"INSERT INTO {table} VALUES (%s, %s)", rows)
            conn.execute("SELECT vk.attach(%s, 'id', 'body', 'minilm@1')", (table,))
        if "articles_cut" in tables:
            conn.execute("SELECT vk.set_chunking('articles_cut', 'tokens', 128, 16)")
    return url


@pytest.fixture
def articles(corpus_url: str) -> str:
    """Two copies of one table: a long article whose last paragraph is about something else, and 60
    short paragraphs; attached without chunking and with token chunks."""
    return make_articles(corpus_url, ("articles_whole", "articles_cut"), 60)


@pytest.fixture
def cut_articles(db_url: str) -> str:
    """The chunked table alone, with 4 short paragraphs beside the article (replacing one row's chunks
    needs no other rows; they only show that a change of chunking re-embeds every row)."""
    return make_articles(db_url, ("articles_cut",), 4)


def test_the_end_of_a_long_text_is_found_with_chunks_and_not_without(articles: str, encoders: EncoderCache) -> None:
    drain(articles, encoders)
    with connect(articles, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        register_vector(conn)
        query = minilm(conn, encoders).encode([TEXTS[300]])[0]
        whole = cur.execute("SELECT * FROM vk.search('articles_whole', %s, 5)", (query,)).fetchall()
        cut = cur.execute("SELECT * FROM vk.search('articles_cut', %s, 5)", (query,)).fetchall()
        assert "1" not in [r["pk"] for r in whole]
        # The row comes first, with the text of its best chunk: one in its last paragraph.
        article = long_text(range(0, 15), 300)
        assert cut[0]["pk"] == "1"
        assert article.find(cut[0]["body"]) + len(cut[0]["body"]) > article.index(TEXTS[300])
        assert len({r["pk"] for r in cut}) == len(cut) == 5  # each row once
        assert (
            one(
                conn,
                "SELECT truncated FROM vk.embeddings WHERE pk = '1' AND collection_id = "
                "(SELECT id FROM vk.collections WHERE name = 'articles_whole')",
            )
            is True
        )

        best = cur.execute("SELECT * FROM vk.search_chunks('articles_cut', %s, 3)", (query,)).fetchone()
        assert best is not None and best["pk"] == "1" and best["end_char"] > article.index(TEXTS[300])
        assert best["body"] == article[best["start_char"] : best["end_char"]]
        stored, wrong = exact_offsets(conn, "articles_cut")
        assert stored > 61 and wrong == 0
        status = cur.execute("SELECT * FROM vk.status WHERE collection = 'articles_cut'").fetchone()
        assert status is not None
        assert (status["rows"], status["embedded"], status["chunking"]) == (61, 61, "tokens")
        assert status["chunks"] == stored

        similar = cur.execute("SELECT * FROM vk.similar('articles_cut', '1', 5)").fetchall()
        assert len({r["pk"] for r in similar}) == 5 and "1" not in {r["pk"] for r in similar}
        recovered = cur.execute("SELECT * FROM vk.recover(%s, 'minilm@1', 5, 'articles_cut')", (query,)).fetchall()
        assert recovered[0]["pk"] == "1" and len({r["pk"] for r in recovered}) == 5
        assert_invariant(conn)


def test_changing_the_text_replaces_all_its_chunks_at_once(cut_articles: str, encoders: EncoderCache) -> None:
    drain(cut_articles, encoders)
    with connect(cut_articles, autocommit=True) as conn:
        before = one(
            conn,
            "SELECT count(*) FROM vk.embeddings WHERE pk = '1' AND collection_id = "
            "(SELECT id FROM vk.collections WHERE name = 'articles_cut')",
        )
        conn.execute("UPDATE articles_cut SET body = %s WHERE id = 1", (long_text(range(40, 44), 45),))
        torn: list[tuple[int, int, int]] = []
        done = threading.Event()

        def watch() -> None:
            # Every snapshot a reader can take shows one complete set of chunks from one text.
            with connect(cut_articles, autocommit=True) as reader:
                while not done.is_set():
                    row = reader.execute(
                        "SELECT count(*), count(DISTINCT text_sha256), max(chunk) FROM vk.embeddings "
                        "WHERE pk = '1' AND collection_id = (SELECT id FROM vk.collections WHERE name = 'articles_cut')"
                    ).fetchone()
                    assert row is not None
                    if row[1] != 1 or row[0] != row[2] + 1:
                        torn.append(row)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            drain(cut_articles, encoders)
        finally:
            done.set()
            watcher.join()
        assert torn == []
        after = one(
            conn,
            "SELECT count(*) FROM vk.embeddings WHERE pk = '1' AND collection_id = "
            "(SELECT id FROM vk.collections WHERE name = 'articles_cut')",
        )
        assert 0 < after < before
        assert exact_offsets(conn, "articles_cut")[1] == 0
        assert_invariant(conn)

        # Back to one vector a row: the chunks go, each row gets its whole text's vector.
        conn.execute("SELECT vk.set_chunking('articles_cut', 'none')")
        drain(cut_articles, encoders)
        assert (
            one(
                conn,
                "SELECT max(chunk) FROM vk.embeddings e JOIN vk.collections c ON c.id = e.collection_id "
                "WHERE c.name = 'articles_cut'",
            )
            == 0
        )
        assert_invariant(conn)


def test_chunking_settings_are_checked(conn: psycopg.Connection) -> None:
    for args, message in [
        (("documents", "paragraphs"), "unknown chunking method"),
        (("documents", "tokens", 10, 10), "overlap"),
        (("documents", "tokens", 0), "size"),
        (("nowhere", "tokens"), "nowhere"),
    ]:
        with pytest.raises(psycopg.Error, match=message):
            conn.execute("SELECT vk.set_chunking(%s, %s" + ", %s" * (len(args) - 2) + ")", args)
        conn.rollback()


def test_a_model_trained_in_the_database_embeds_chunks(corpus_url: str, encoders: EncoderCache) -> None:
    """A tfidf version trained by a job, a sentence-chunked markdown table, a row over 1 MB."""
    with connect(corpus_url, autocommit=True) as conn:
        conn.execute("SELECT vk.train('words', 'tfidf', '{\"dim\": 32}', collection => 'documents')")
        serve(corpus_url, encoders)  # trains, then re-embeds vk.documents with words@1
        conn.execute("CREATE TABLE manuals (id int PRIMARY KEY, body text)")
        done = cli(
            corpus_url,
            "attach",
            "manuals",
            "--pk",
            "id",
            "--text",
            "body",
            "--model",
            "words@1",
            "--chunking",
            "markdown",
            "--chunk-size",
            "120",
        )
        assert done.returncode == 0, done.stderr
        huge = "\n\n".join(f"# Part {i}\n{TEXTS[i % 400]}" for i in range(4000))
        assert len(huge) > 1_000_000
        conn.execute("INSERT INTO manuals VALUES (1, %s), (2, %s)", (huge, "# Short\n" + TEXTS[7]))
    drain(corpus_url, encoders)
    with connect(corpus_url, autocommit=True) as conn:
        stored, wrong = exact_offsets(conn, "manuals")
        assert stored > 4000 and wrong == 0
        # Every section starts a chunk.
        assert (
            one(
                conn,
                "SELECT count(*) FROM vk.embeddings e JOIN vk.collections c ON c.id = e.collection_id "
                "WHERE c.name = 'manuals' AND e.body LIKE '# Part %%'",
            )
            == 4000
        )
        assert_invariant(conn)
    found = cli(corpus_url, "search", TEXTS[7], "--collection", "manuals", "-k", "2", "--chunks", "--json")
    assert found.returncode == 0, found.stderr
    assert '"start_char"' in found.stdout
