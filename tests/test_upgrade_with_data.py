"""A database with attached tables and vectors upgrades to head with its search results unchanged.

A database of a recorded release gets three attached tables (plain, with metadata, chunked)
filled by plain INSERTs and embedded by today's worker (which serves older worker contracts).
Every search that needs no worker at query time (vector queries, filtered, chunks, keyword-only
hybrid, similar rows) is recorded, the schema upgraded to head, and each must answer the same:
the same keys in the same order, distances within 1e-6. Rows written after the upgrade are
embedded; `schema check` finds nothing amiss; the downgrade back to the release keeps the data
and its answers.

Vector queries only: PostgreSQL 16 in CI has no dblink, so no text queries; and few enough rows
match each filter that filtered search is exact on pgvector 0.7 and 0.8 alike.
"""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from helpers import drain, one
from vectorkeep.app import schema
from vectorkeep.db import migrate
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache

# The release below head, and the one below it (a schema before the application's own claim).
RELEASES = ("0015_safety", "0014_scale")

NOTES = [
    "PostgreSQL keeps the text beside its vector, so no vector is orphaned.",
    "A worker listens for notifications and embeds new rows in batches.",
    "Retraining runs as a versioned job recorded in a table.",
    "The cat slept on the warm windowsill all afternoon.",
    "Our team hiked up the mountain trail before sunrise.",
    "Fresh bread from the bakery smells of butter and yeast.",
    "An HNSW index answers nearest-neighbour queries in logarithmic time.",
    "The orchestra tuned their violins before the concert began.",
    "Heavy rain flooded the river banks in early spring.",
    "Backups are tested by restoring them to a scratch server.",
    "The goalkeeper saved a penalty in the final minute.",
    "Tomatoes ripen faster in a paper bag with a banana.",
]

ARTICLES = [
    ("databases", "Vacuum reclaims the space of dead tuples in PostgreSQL tables."),
    ("databases", "A B-tree index keeps keys sorted so range scans stay cheap."),
    ("databases", "Logical replication streams row changes to a subscriber."),
    ("databases", "The query planner chooses between index scans and sequential scans."),
    ("databases", "Full-text search ranks documents by the words of a query."),
    ("cooking", "Knead the dough until it is smooth and springs back."),
    ("cooking", "Simmer the tomato sauce slowly so it thickens."),
    ("cooking", "Sear the steak in a hot pan before roasting it."),
    ("cooking", "A pinch of salt brings out the sweetness of caramel."),
    ("travel", "The night train crosses the Alps on its way to Milan."),
    ("travel", "Pack a light rain jacket for a week in Scotland."),
    ("travel", "The ferry to the island leaves every two hours in summer."),
    ("travel", "A rail pass covers most regional trains across the country."),
]

PAGES = [
    "Chunking cuts long texts into pieces. Each piece gets a vector of its own. Search returns a row once, "
    "by its best chunk. Offsets say where each chunk starts and ends.",
    "The lighthouse keeper climbed the stairs each evening. He lit the lamp at dusk. Ships passed safely "
    "through the strait all night. In the morning he wrote the log.",
    "Sourdough needs a lively starter. Feed it flour and water daily. Let the dough rise overnight in a "
    "cool place. Bake it in a very hot oven with steam.",
    "Glaciers carve deep valleys over thousands of years. Meltwater feeds rivers in the summer. Moraines "
    "mark where the ice once stood. Lakes fill the hollows it left.",
    "A concert hall is tuned by its shape. Wooden panels soften the echo. The best seats are often in the "
    "balcony. Musicians rehearse to learn the room.",
]

SETUP = """
CREATE SCHEMA library;
CREATE TABLE library.notes (id int PRIMARY KEY, body text);
CREATE TABLE library.articles (id int PRIMARY KEY, topic text NOT NULL, body text);
CREATE TABLE library.pages (id int PRIMARY KEY, shelf text, body text);
"""

# Query vectors are taken from stored rows once, before the upgrade, and passed as literals after.
QUERY_ROWS = {"notes": "7", "articles": "2", "pages": "1"}

SEARCHES: dict[str, str] = {
    "search": "SELECT pk, distance FROM vk.search('notes', %(notes)s::vector, 6)",
    "search unfiltered": "SELECT pk, distance FROM vk.search('articles', %(articles)s::vector, 8)",
    "search filtered": (
        "SELECT pk, distance FROM vk.search('articles', %(articles)s::vector, 4, filter => '{\"topic\": \"travel\"}')"
    ),
    "search chunked rows": "SELECT pk, distance FROM vk.search('pages', %(pages)s::vector, 4)",
    "search_chunks": (
        "SELECT pk || '#' || chunk || ':' || start_char || '-' || end_char, distance "
        "FROM vk.search_chunks('pages', %(pages)s::vector, 8)"
    ),
    "search_chunks filtered": (
        "SELECT pk || '#' || chunk, distance "
        "FROM vk.search_chunks('pages', %(notes)s::vector, 5, filter => '{\"shelf\": \"b\"}')"
    ),
    "hybrid_search keyword only": (
        "SELECT pk, score FROM vk.hybrid_search('articles', 'index scans of the query planner', 5, vector_weight => 0)"
    ),
    "similar": "SELECT pk, distance FROM vk.similar('notes', '1', 5)",
    "similar filtered": (
        "SELECT pk, distance FROM vk.similar('articles', '6', 3, filter => '{\"topic\": \"cooking\"}')"
    ),
    "similar chunked": "SELECT pk, distance FROM vk.similar('pages', '3', 3)",
}

Results = dict[str, list[tuple[str, float]]]


def fill(conn: psycopg.Connection) -> None:
    """The application's tables, attached, and their rows written with plain INSERTs."""
    conn.execute(SETUP)
    conn.execute("SELECT vk.attach('library.notes', 'id', 'body')")
    conn.execute(
        "SELECT vk.attach('library.articles', 'id', 'body', metadata => 'jsonb_build_object(''topic'', topic)')"
    )
    conn.execute("SELECT vk.attach('library.pages', 'id', 'body', metadata => 'jsonb_build_object(''shelf'', shelf)')")
    conn.execute("SELECT vk.set_chunking('pages', 'sentences', 16)")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO library.notes VALUES (%s, %s)", list(enumerate(NOTES, 1)))
        cur.executemany(
            "INSERT INTO library.articles VALUES (%s, %s, %s)", [(i, t, b) for i, (t, b) in enumerate(ARTICLES, 1)]
        )
        cur.executemany(
            "INSERT INTO library.pages VALUES (%s, %s, %s)", [(i, "ab"[i % 2], b) for i, b in enumerate(PAGES, 1)]
        )


def query_vectors(conn: psycopg.Connection) -> dict[str, str]:
    """A stored row's vector per collection (a chunked row's: the mean of its chunks'), as text."""
    return {
        collection: one(conn, "SELECT vk.row_vector(%s, %s)::text", (collection, pk))
        for collection, pk in QUERY_ROWS.items()
    }


# Ranked otherwise at head on purpose (revision 0020_bm25: BM25 over kept statistics): after the
# upgrade they must answer as a recount of those statistics does, and after the downgrade as before.
REVISED = {"hybrid_search keyword only"}


def answers(conn: psycopg.Connection, vectors: dict[str, str], only: set[str] | None = None) -> Results:
    out: Results = {}
    for name, statement in SEARCHES.items():
        if only is not None and name not in only:
            continue
        rows = conn.execute(statement, vectors).fetchall()
        assert rows, f"{name} found nothing"
        out[name] = [(str(key), float(value)) for key, value in rows]
    return out


def assert_same(before: Results, after: Results, when: str, skip: set[str] = REVISED) -> None:
    assert before.keys() == after.keys()
    for name in before.keys() - skip:
        keys = [k for k, _ in before[name]], [k for k, _ in after[name]]
        assert keys[0] == keys[1], f"{name} {when}: {before[name]} then {after[name]}"
        for (key, a), (_, b) in zip(before[name], after[name], strict=True):
            assert abs(a - b) <= 1e-6, f"{name} {when}: {key} at {a} then {b}"


def settled(conn: psycopg.Connection) -> dict[str, Any]:
    """Per collection: rows embedded and queued, from vk.status."""
    rows = conn.execute("SELECT collection, embedded, pending, failed, dead FROM vk.status ORDER BY 1").fetchall()
    return {name: (embedded, pending, failed, dead) for name, embedded, pending, failed, dead in rows}


@pytest.fixture(params=RELEASES)
def release_db(request: pytest.FixtureRequest, empty_db_url: str, encoders: EncoderCache) -> Iterator[tuple[str, str]]:
    """(url, release): a database of that release with the three tables attached and embedded."""
    release = request.param
    migrate.upgrade(empty_db_url, release)
    with connect(empty_db_url, autocommit=True) as conn:
        fill(conn)
    drain(empty_db_url, encoders)
    yield empty_db_url, release


def test_a_database_with_vectors_upgrades_to_head_with_its_search_results_unchanged(
    release_db: tuple[str, str], encoders: EncoderCache
) -> None:
    url, release = release_db
    with connect(url, autocommit=True) as conn:
        assert settled(conn) == {
            "articles": (len(ARTICLES), 0, 0, 0),
            "documents": (0, 0, 0, 0),
            "notes": (len(NOTES), 0, 0, 0),
            "pages": (len(PAGES), 0, 0, 0),
        }
        assert one(conn, "SELECT count(*) FROM vk.embeddings e WHERE e.chunk > 0") > 0, "pages were not chunked"
        vectors = query_vectors(conn)
        before = answers(conn, vectors)
        embedded_before = one(conn, "SELECT max(computed_at) FROM vk.embeddings")

    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    # The collections attached at the release have every object head's would have.
    assert schema.check(url).drift.lines() == []
    with connect(url, autocommit=True) as conn:
        assert query_vectors(conn) == vectors
        upgraded = answers(conn, vectors)
        assert_same(before, upgraded, f"after the upgrade from {release}")
        for collection in ("notes", "articles", "pages"):
            conn.execute("SELECT vk.rebuild_keyword_stats(%s)", (collection,))
        assert_same(upgraded, answers(conn, vectors), "after a recount of the keyword statistics", skip=set())
        # The application's writes still queue, and today's worker embeds them and only them.
        conn.execute("INSERT INTO library.notes VALUES (100, 'A note written after the upgrade, about vacuum.')")
        conn.execute("INSERT INTO library.articles VALUES (100, 'travel', 'The coastal bus stops at every village.')")
        conn.execute(
            "INSERT INTO library.pages VALUES (100, 'b', 'A page after the upgrade. It has two sentences. Three.')"
        )
        conn.execute("UPDATE library.notes SET body = 'The dog slept on the cold stone floor.' WHERE id = 4")
    assert drain(url, encoders).stats.embedded == 4
    with connect(url, autocommit=True) as conn:
        assert settled(conn) == {
            "articles": (len(ARTICLES) + 1, 0, 0, 0),
            "documents": (0, 0, 0, 0),
            "notes": (len(NOTES) + 1, 0, 0, 0),
            "pages": (len(PAGES) + 1, 0, 0, 0),
        }
        recomputed = conn.execute(
            "SELECT DISTINCT pk FROM vk.embeddings WHERE computed_at > %s ORDER BY 1", (embedded_before,)
        ).fetchall()
        assert recomputed == [("100",), ("4",)]
        for collection in ("notes", "articles", "pages"):
            assert (
                one(conn, "SELECT pk FROM vk.search(%s, vk.row_vector(%s, '100'), 1)", (collection, collection))
                == "100"
            )
        at_head = answers(conn, vectors)

    # Back to the release: the data stays, search answers the same, its worker contract still serves.
    migrate.downgrade(url, release)
    assert migrate.current_revision(url) == release
    assert schema.check(url).drift.lines() == []
    with connect(url, autocommit=True) as conn:
        downgraded = answers(conn, vectors)
        assert_same(at_head, downgraded, f"after the downgrade to {release}")
        assert_same(before, downgraded, f"after the downgrade to {release}", skip=SEARCHES.keys() - REVISED)
        conn.execute("INSERT INTO library.notes VALUES (101, 'A note written after the downgrade.')")
    assert drain(url, encoders).stats.embedded == 1
    with connect(url, autocommit=True) as conn:
        assert one(conn, "SELECT pk FROM vk.search('notes', vk.row_vector('notes', '101'), 1)") == "101"
