"""Careless input gets a hint, never a silent empty answer: a filter key or type no row has, a text
expression that is NULL for some rows, a train call without its collection, a key passed as an
integer, a retire that would delete vectors; and results a DBA can read (a row, not a composite)."""

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from helpers import drain, one
from vectorkeep.workers.encoder_cache import EncoderCache

NOTES = [
    (1, "Kneading", "Knead the bread dough and let it proof for an hour.", "cooking", 1),
    (2, "Indexes", "PostgreSQL indexes speed up lookups by key.", "databases", 2),
    (3, "Tomatoes", None, "gardening", 3),  # one NULL column: title || '. ' || description is NULL
]


class Notices:
    """What the server said to a connection (notices and warnings), in order."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.said: list[tuple[str, str, str]] = []
        conn.add_notice_handler(self.hear)

    def hear(self, d: psycopg.errors.Diagnostic) -> None:
        # Read now: the diagnostic's result is freed once the handler returns.
        self.said.append((d.severity_nonlocalized or "", d.message_primary or "", d.message_hint or ""))

    def take(self) -> list[tuple[str, str, str]]:
        taken, self.said = self.said, []
        return taken


@pytest.fixture
def notes(conn: psycopg.Connection, db_url: str, encoders: EncoderCache) -> Iterator[psycopg.Connection]:
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, title text, description text, topic text, shelf int)")
    conn.cursor().executemany("INSERT INTO notes VALUES (%s, %s, %s, %s, %s)", NOTES)
    yield conn


def attach_notes(conn: psycopg.Connection, text: str = "title || '. ' || description") -> tuple[object, ...]:
    row = conn.execute(
        "SELECT * FROM vk.attach('notes', 'id', %s, "
        "metadata => $$jsonb_build_object('topic', topic, 'shelf', shelf)$$)",
        (text,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_attach_warns_of_rows_whose_text_is_null_and_says_nothing_else(notes: psycopg.Connection) -> None:
    said = Notices(notes)
    assert attach_notes(notes) == ("notes", "minilm@1", 3)
    [(severity, message, hint)] = said.take()  # no "does not exist, skipping" from a first install
    assert severity == "WARNING"
    assert "is NULL or blank for 1 of the first 3 rows of notes (key '3' for one)" in message
    assert "concat_ws" in hint and "SELECT vk.set_text('notes', 'concat_ws('' '', title, description)');" in hint
    # A text that is never NULL: nothing to say.
    notes.execute("SELECT vk.detach('notes')")
    attach_notes(notes, "concat_ws('. ', title, description)")
    assert said.take() == []


def test_set_text_changes_the_expression_in_place_and_rows_keep_their_vectors_until_replaced(
    notes: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn = notes
    attach_notes(conn)
    drain(db_url, encoders)
    vectors = (
        "SELECT pk, body, embedding::text FROM vk.embeddings "
        "WHERE collection_id = vk.collection_id('notes') ORDER BY pk"
    )
    before = conn.execute(vectors).fetchall()
    assert [r[0] for r in before] == ["1", "2"]  # the NULL text got no vector
    # A bad expression changes nothing.
    with pytest.raises(errors.InvalidParameterValue, match="does not evaluate"):
        conn.execute("SELECT vk.set_text('notes', 'no_such_column')")
    with pytest.raises(errors.InvalidParameterValue, match="bad text expression"):
        conn.execute("SELECT vk.set_text('notes', 'title; DROP TABLE notes')")
    assert (
        one(conn, "SELECT text_expression FROM vk.collections WHERE name = 'notes'") == "title || '. ' || description"
    )
    # concat_ws gives rows 1 and 2 the same text: only row 3 is queued, and nothing is deleted meanwhile.
    assert one(conn, "SELECT vk.set_text('notes', $$concat_ws('. ', title, description)$$)") == 1
    assert conn.execute(vectors).fetchall() == before
    assert one(conn, "SELECT array_agg(pk) FROM vk.queue WHERE collection_id = vk.collection_id('notes')") == ["3"]
    drain(db_url, encoders)
    after = conn.execute(vectors).fetchall()
    assert after[:2] == before and after[2][:2] == ("3", "Tomatoes")
    # A changed text re-embeds every row, each keeping its old vector until the worker writes the new one.
    assert one(conn, "SELECT vk.set_text('notes', $$upper(title)$$)") == 3
    assert conn.execute(vectors).fetchall() == after
    drain(db_url, encoders)
    assert [r[1] for r in conn.execute(vectors).fetchall()] == ["KNEADING", "INDEXES", "TOMATOES"]


def test_a_filter_that_matches_nothing_names_the_keys_and_types_present(
    notes: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn = notes
    attach_notes(conn, "concat_ws('. ', title, description)")
    drain(db_url, encoders)
    said = Notices(conn)
    query = "SELECT count(*) FROM vk.search('notes', vk.row_vector('notes', '1'), 3, filter => %s)"
    keys = 'The rows\' metadata keys: "shelf" (number), "topic" (string).'

    assert one(conn, query, ('{"topci": "cooking"}',)) == 0
    [(severity, message, hint)] = said.take()
    assert severity == "NOTICE"
    assert 'no row of collection "notes" has the metadata key "topci"' in message
    assert hint.startswith(keys) and "SET vk.strict_filters = on" in hint

    assert one(conn, query, ('{"shelf": "2"}',)) == 0
    [(_, message, _)] = said.take()
    assert 'the filter gives "shelf" a string ("2"), and no row\'s "shelf" is a string' in message

    # Right keys and types, values no row has: an honest empty answer, nothing said.
    assert one(conn, query, ('{"shelf": 9}',)) == 0
    assert one(conn, query, ('{"shelf": 2}',)) == 1
    assert said.take() == []

    # Keyword-only hybrid search (no vector list) says it too.
    hybrid = "SELECT count(*) FROM vk.hybrid_search('notes', 'bread', 3, filter => %s, vector_weight => 0)"
    assert one(conn, hybrid, ('{"topci": "cooking"}',)) == 0
    assert [m for _, m, _ in said.take()] == [
        'vectorkeep: filter {"topci": "cooking"} matches nothing: '
        'no row of collection "notes" has the metadata key "topci"'
    ]

    conn.execute("SET vk.strict_filters = on")
    with pytest.raises(errors.InvalidParameterValue, match='has the metadata key "topci"') as strict:
        conn.execute(query, ('{"topci": "cooking"}',))
    assert strict.value.diag.message_hint == keys
    assert one(conn, query, ('{"topic": "cooking"}',)) == 1
    with pytest.raises(errors.InvalidParameterValue, match="a filter is a jsonb object"):
        conn.execute(query, ('["cooking"]',))


def test_an_array_holding_a_value_is_matched_by_an_array(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("CREATE TABLE tagged (id int PRIMARY KEY, body text, tags text[])")
    conn.execute("INSERT INTO tagged VALUES (1, 'Bread and butter.', '{food,breakfast}')")
    conn.execute("SELECT vk.attach('tagged', 'id', 'body', metadata => $$jsonb_build_object('tags', to_jsonb(tags))$$)")
    drain(db_url, encoders)
    said = Notices(conn)
    query = "SELECT count(*) FROM vk.search('tagged', vk.row_vector('tagged', '1'), 3, filter => %s)"
    assert one(conn, query, ('{"tags": "food"}',)) == 0
    [(_, message, _)] = said.take()
    assert 'an array holding it is matched by {"tags": ["food"]}' in message
    assert one(conn, query, ('{"tags": ["food"]}',)) == 1


def test_train_without_a_collection_is_refused_naming_them(conn: psycopg.Connection) -> None:
    for call in ("SELECT vk.train('mine', 'tfidf')", "SELECT vk.schedule_train('mine', 'tfidf', '1 day')"):
        with pytest.raises(errors.InvalidParameterValue, match="needs collection => the collection") as refused:
            conn.execute(call)
        assert "collection => 'documents'); collections: documents." in (refused.value.diag.message_hint or "")
    assert one(conn, "SELECT count(*) FROM vk.jobs") == 0
    assert one(conn, "SELECT count(*) FROM vk.schedules") == 0


def test_a_key_of_the_tables_own_type_works_as_its_text(corpus_url: str) -> None:
    with psycopg.connect(corpus_url, autocommit=True) as conn:
        by_text = conn.execute("SELECT pk, distance FROM vk.similar('documents', '7', 3)").fetchall()
        assert len(by_text) == 3
        assert conn.execute("SELECT pk, distance FROM vk.similar('documents', 7, 3)").fetchall() == by_text
        assert conn.execute("SELECT pk, distance FROM vk.similar('documents', 7::bigint, 3)").fetchall() == by_text
        assert one(conn, "SELECT vk.row_vector('documents', 7) = vk.row_vector('documents', '7')") is True
        with pytest.raises(errors.NoDataFound, match="has no row '70000'"):
            conn.execute("SELECT * FROM vk.similar('documents', 70000)")


def test_results_are_rows_a_dba_can_read(conn: psycopg.Connection) -> None:
    # vk.set_storage printed the whole version, fingerprint vector included; now its label.
    assert one(conn, "SELECT vk.set_storage('minilm@1', 'vector')") == "minilm@1"
    columns = conn.execute(
        "SELECT p.proname, pg_get_function_result(p.oid) FROM pg_proc p "
        "WHERE p.pronamespace = 'vk'::regnamespace AND p.proname !~ '^_' AND p.proname !~ '_v[0-9]+$' "
        "AND pg_get_function_result(p.oid) ~ '^vk\\.' ORDER BY 1"
    ).fetchall()
    # Only lookups a query composes (`(vk.model('minilm')).id`) return a whole row of a vk table.
    assert columns == [("model", "vk.models")]
    assert one(conn, "SELECT pg_get_function_result('vk.activate(text, text, jsonb)'::regprocedure)") == (
        "TABLE(activated text, serves_as text, replaced text)"
    )
