"""The worker contract and upgrades with data: the previous release's workers keep
running against head, a worker refuses a schema that does not serve its contract,
and a database of the previous release, with vectors of two versions, chunks and
jobs, upgrades without losing or re-embedding anything."""

import functools
import hashlib
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.types.json import Jsonb

from helpers import drain, is_do_block, one, prepare
from vectorkeep import sql
from vectorkeep.app import schema
from vectorkeep.db import contract, migrate
from vectorkeep.db.connect import connect
from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders import Encoder, load_encoder
from vectorkeep.workers.families.text.sentence_transformers import MINILM
from vectorkeep.workers.worker import Worker, WorkerSettings

PREVIOUS = "0015_safety"
# The last release whose schema had no worker contract version.
BEFORE_CONTRACTS = "0008_maps_sequences"


def previous_queries() -> dict[str, str]:
    """The named statements of the newest release (sql/releases/<revision>.queries.sql, kept by
    `vectorkeep schema release`): while head is unreleased, its previous release's."""
    return sql.parse_queries(sql.read(sql.released_queries_file(schema.frozen_revisions()[-1])))


Q = previous_queries()

TEXTS = {
    1: "PostgreSQL keeps the text beside its vector, so no vector is orphaned.",
    2: "A worker listens for notifications and embeds new rows in batches.",
    3: "Retraining runs as a versioned job recorded in a table.",
    4: (
        "Long articles are cut into chunks. Each chunk gets its own vector, and search returns the row once, "
        "by its best chunk. Offsets say where each chunk starts and ends in the text."
    ),
}


@functools.cache
def minilm() -> Encoder:
    """all-MiniLM-L6-v2, loaded without the registry (the previous release's schema lacks today's contract)."""
    return load_encoder(ModelVersion(0, "minilm", 1, "sentence-transformers", 384, "cosine", {"source": MINILM}))


def old_worker_pass(conn: psycopg.Connection) -> int:
    """One batch of the previous release's worker loop, statement for statement (claim, put
    chunks, finish the row); long rows are cut into two chunks. The rows settled."""
    with conn.transaction():
        claimed = conn.execute(Q["claim"], {"batch_size": 100}).fetchall()
        for collection_id, pk, model_id, _attempts, body in claimed:
            key = {"collection_id": collection_id, "pk": pk, "model_id": model_id}
            model = conn.execute(Q["model_by_id"], {"id": model_id}).fetchone()
            assert model is not None and model[3] == "sentence-transformers"
            encoder = minilm()
            cut = len(body) // 2 if len(body) > 120 else len(body)
            pieces = [(0, cut), (cut, len(body))] if cut < len(body) else [(0, len(body))]
            vectors = encoder.encode([body[a:b] for a, b in pieces])
            for chunk, ((a, b), vector) in enumerate(zip(pieces, vectors, strict=True)):
                conn.execute(
                    Q["upsert_chunk"],
                    {
                        **key,
                        "chunk": chunk,
                        "start_char": a,
                        "end_char": b,
                        "embedding": vector,
                        "body": body[a:b],
                        "text_sha256": hashlib.sha256(body.encode()).digest(),
                        "truncated": False,
                    },
                )
            conn.execute(Q["finish_row"], {**key, "chunks": len(pieces)})
    return len(claimed)


@pytest.fixture
def previous_release_db(server_url: str, encoders: EncoderCache) -> Iterator[str]:
    """A database at the previous release, used the way that release was: a table attached and
    embedded by its worker's statements with two model versions, chunks, a job and a schedule."""
    from conftest import drop_database, fresh_database

    name, url = fresh_database(server_url, None)
    migrate.upgrade(url, PREVIOUS)
    with connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, body text)")
        for pk, text in TEXTS.items():
            conn.execute("INSERT INTO items VALUES (%s, %s)", (pk, text))
        conn.execute("SELECT vk.attach('items', 'id', 'body')")
        # A second version of the same encoder, registered as that release's CLI did.
        conn.execute(
            Q["register_model"],
            {
                "name": "minilm",
                "kind": "sentence-transformers",
                "dim": 384,
                "distance": "cosine",
                "params": Jsonb({"source": MINILM}),
                "fingerprint": None,
            },
        )
        conn.execute("SELECT vk.add_model('items', 'minilm@2')")
        conn.execute("SELECT vk.schedule_train('nightly', 'tfidf', '1 day', '{}', 'items')")
        conn.execute("SELECT vk.reembed('items', 'minilm@2')")
    with connect(url) as conn:
        while old_worker_pass(conn):
            pass
    yield url
    drop_database(server_url, name)


STATE = """
SELECT (SELECT count(*) FROM vk.embeddings), (SELECT count(*) FROM vk.embeddings WHERE chunk > 0),
       (SELECT max(computed_at) FROM vk.embeddings), (SELECT count(*) FROM vk.queue),
       (SELECT count(*) FROM vk.jobs), (SELECT count(*) FROM vk.schedules),
       (SELECT string_agg(vk.model_label(m) || ':' || m.status, ',' ORDER BY m.id) FROM vk.models m)
"""


def searches(conn: psycopg.Connection) -> list[list[tuple[str, float]]]:
    """For each version, the nearest rows to each row's stored vector."""
    out = []
    for model in ("minilm@1", "minilm@2"):
        for pk in map(str, TEXTS):
            rows = conn.execute(
                "SELECT pk, round(distance::numeric, 6) FROM vk.search('items', "
                "(SELECT embedding FROM vk.embeddings WHERE pk = %s AND chunk = 0 AND model_id = (vk.model(%s)).id), "
                "3, %s)",
                (pk, model, model),
            ).fetchall()
            out.append(rows)
    return out


def test_a_database_of_the_previous_release_upgrades_without_losing_or_reembedding(
    previous_release_db: str, encoders: EncoderCache
) -> None:
    url = previous_release_db
    with connect(url, autocommit=True) as conn:
        before, found = conn.execute(STATE).fetchone(), searches(conn)
    assert before is not None and before[0] == 2 * (len(TEXTS) + 1) and before[1] == 2 and before[3] == 0

    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    with connect(url, autocommit=True) as conn:
        assert conn.execute(STATE).fetchone() == before
        assert searches(conn) == found
        # The application's writes still queue, and today's worker embeds only what changed.
        conn.execute("UPDATE items SET body = 'A changed text about vector search.' WHERE id = 1")
        conn.execute("INSERT INTO items VALUES (5, 'A new row after the upgrade.')")
    assert drain(url, encoders).stats.embedded == 4  # two rows x two versions, nothing else
    with connect(url, autocommit=True) as conn:
        assert (
            one(
                conn,
                "SELECT count(*) FROM vk.embeddings WHERE pk IN ('2', '3', '4') AND computed_at > %s",
                (before[2],),
            )
            == 0
        )
        assert (
            one(
                conn,
                "SELECT pk FROM vk.search('items', (SELECT embedding FROM vk.embeddings WHERE pk = '5' "
                "AND model_id = 1), 1)",
            )
            == "5"
        )


# Statements of the previous release that head breaks on purpose, and why (docs/upgrading.md). Empty
# while the previous release is 0022_careless_input (its activate and set_storage were the last ones).
BROKEN_ON_PURPOSE: dict[str, str] = {}


def test_the_previous_release_worker_statements_run_against_head(db_url: str, encoders: EncoderCache) -> None:
    """Every statement of the previous release plans against head (but those broken on purpose, which
    still fail: the list says no more than is true), and its worker loop embeds."""
    with connect(db_url, autocommit=True) as conn:
        for name in BROKEN_ON_PURPOSE:
            with pytest.raises(psycopg.Error):
                prepare(conn, f"old_{name}", Q[name])
        for name, text in ((n, t) for n, t in Q.items() if n not in BROKEN_ON_PURPOSE):
            if name.startswith("listen") or is_do_block(text):
                conn.execute(text.encode())
                continue
            prepare(conn, f"old_{name}", text)
        conn.execute("INSERT INTO vk.documents (body) VALUES (%s), (%s)", (TEXTS[1], TEXTS[4]))
    with connect(db_url) as conn:
        assert old_worker_pass(conn) == 2
        # The job runner's side: claim, heartbeat, finish.
        with conn.transaction():
            job_id = one(conn, "SELECT vk.reembed('documents', 'minilm@1')")
            job = conn.execute(Q["claim_job"], {"worker": "old", "lease": 30.0, "kinds": None}).fetchone()
            assert job is not None and job[0] == job_id
            assert one(conn, Q["heartbeat_job"], {"id": job_id, "worker": "old", "lease": 30.0, "progress": None})
            assert one(
                conn,
                Q["finish_job"],
                {"id": job_id, "worker": "old", "metrics": Jsonb({}), "model_id": None, "log": ""},
            )
    with connect(db_url, autocommit=True) as conn:
        assert one(conn, "SELECT count(*) FROM vk.queue") == 0
        assert one(conn, "SELECT count(*) FROM vk.embeddings") == 3  # one row, and two chunks of the long one
        assert one(conn, "SELECT status FROM vk.jobs") == "succeeded"


def test_a_worker_refuses_a_schema_that_predates_its_contract(server_url: str, encoders: EncoderCache) -> None:
    from conftest import drop_database, fresh_database

    name, url = fresh_database(server_url, None)
    try:
        migrate.upgrade(url, BEFORE_CONTRACTS)
        with pytest.raises(contract.SchemaMismatch, match=r"predates worker contracts.*vectorkeep migrate"):
            Worker(url, WorkerSettings(), encoders=encoders).run(until_idle=True)
    finally:
        drop_database(server_url, name)


def test_a_worker_refuses_a_schema_that_no_longer_serves_its_contract(db_url: str, encoders: EncoderCache) -> None:
    with connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE OR REPLACE FUNCTION vk.worker_contract() RETURNS integer[] LANGUAGE sql RETURN ARRAY[2]")
        conn.execute("INSERT INTO vk.documents (body) VALUES ('waits for a worker of the right release')")
    with pytest.raises(contract.SchemaMismatch, match=r"no longer serves.*serves \[2\].*upgrade vectorkeep"):
        Worker(db_url, WorkerSettings(), encoders=encoders).run(until_idle=True)
    with connect(db_url, autocommit=True) as conn:
        assert one(conn, "SELECT count(*) FROM vk.queue") == 1  # nothing claimed


@pytest.mark.needs_dblink
def test_the_previous_release_lane_answers_todays_text_queries(db_url: str) -> None:
    """A lane of the previous release claims, answers and commits in one transaction, and releases no
    lock: today's caller still gets its vector (it backs off rather than waits on the lock), and the
    locks that lane leaves go at its next claim."""
    answer: list[object] = []

    def ask() -> None:
        with connect(db_url, autocommit=True) as c:
            c.execute("SET vk.embed_timeout = '20s'")
            answer.append(one(c, "SELECT vk.embed('minilm@1', %s)", (TEXTS[2],)))

    with (
        psycopg.connect(db_url, autocommit=True, application_name="vectorkeep interactive old"),
        connect(db_url) as lane,
    ):
        caller = threading.Thread(target=ask)
        caller.start()
        answered = 0
        deadline = time.monotonic() + 20
        while not answered and time.monotonic() < deadline:
            with lane.transaction():
                for request_id, _model_id, text in lane.execute(Q["claim_embed_requests"], {"batch_size": 32}):
                    vector = minilm().encode([text])[0]
                    lane.execute(Q["answer_embed_request"], {"id": request_id, "embedding": vector})
                    answered += 1
            time.sleep(0.01)
        caller.join(20)
        assert answered == 1 and len(answer) == 1
        held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        with lane.transaction():
            assert one(lane, held) == 1
            lane.execute(Q["claim_embed_requests"], {"batch_size": 32}).fetchall()
            assert one(lane, held) == 0
