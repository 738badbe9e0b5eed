"""Roles: an application role writes text and searches, and cannot change models, jobs,
artifacts or vectors; a worker role embeds and runs jobs; functions acting for their
callers fix their search_path."""

from collections.abc import Callable

import numpy as np
import psycopg
import pytest
from psycopg import errors

from helpers import FAST_RETRY, drain, one
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.service import Service
from vectorkeep.workers.worker import WorkerSettings

FORBIDDEN_TO_APPS = [
    "UPDATE vk.models SET status = 'retired'",
    "INSERT INTO vk.models (name, version, kind, dim) VALUES ('evil', 1, 'external', 3)",
    "DELETE FROM vk.jobs",
    "INSERT INTO vk.jobs (kind) VALUES ('train')",
    "DELETE FROM vk.model_artifacts",
    "UPDATE vk.embeddings SET body = 'forged'",
    "DELETE FROM vk.embeddings",
    "INSERT INTO vk.queue (collection_id, pk, model_id) VALUES (1, '1', 1)",
    "UPDATE vk.collections SET text_expression = 'body'",
    "SELECT vk.train('mine', 'tfidf', collection => 'documents')",
    "SELECT vk.retire('minilm@1')",
    "SELECT vk.attach('vk.documents', 'id', 'body')",
    "SELECT * FROM vk.claim_v1(10)",
    "SELECT * FROM vk.claim_job_v1('me', 30)",
    "SELECT vk.set_chunking('documents', 'tokens', 64)",
    "SELECT vk.set_order('documents', 'id', 'id')",
    "SELECT vk.submit_job_v1('train', '{}', 1)",
    "DELETE FROM vk.coordinates",
    "SELECT count(*) FROM vk.queue",
]


def test_application_role_writes_and_searches_but_changes_nothing_else(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache, login: Callable[[str], str]
) -> None:
    conn.execute("CREATE TABLE items (id int PRIMARY KEY, body text)")
    conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON items TO vk_app")
    conn.execute("SELECT vk.attach('items', 'id', 'body')")
    app_url = login("vk_app")
    with psycopg.connect(app_url, autocommit=True) as app:
        # Its own writes are queued by the triggers, which act as their owner.
        app.execute("INSERT INTO vk.documents (body) VALUES ('written by the application')")
        app.execute("INSERT INTO items VALUES (1, 'an item'), (2, 'another item')")
        app.execute("UPDATE items SET body = 'an item, changed' WHERE id = 1")
        app.execute("DELETE FROM items WHERE id = 2")
        assert conn.execute("SELECT count(*) FROM vk.queue").fetchone() == (2,)
        for statement in FORBIDDEN_TO_APPS:
            with pytest.raises(errors.InsufficientPrivilege):
                app.execute(statement)
    drain(db_url, encoders)
    with connect(app_url, autocommit=True) as app:
        hits = app.execute("SELECT pk, body FROM vk.search('items', %s, 5)", (np.ones(384, dtype=np.float32),))
        assert [tuple(r) for r in hits] == [("1", "an item, changed")]
        assert app.execute("SELECT rows, embedded FROM vk.status WHERE collection = 'items'").fetchone() == (1, 1)
        vector = app.execute(
            "SELECT embedding FROM vk.embeddings WHERE pk = '1' AND collection_id = vk.collection_id('items')"
        ).fetchone()
        assert vector is not None
        assert app.execute("SELECT pk FROM vk.recover(%s, 'minilm', 1)", (vector[0],)).fetchone() == ("1",)
    # Chunked by an operator: the application's search API is unchanged.
    conn.execute("SELECT vk.set_chunking('items', 'tokens', 2)")
    drain(db_url, encoders)
    with connect(app_url, autocommit=True) as app:
        query = np.ones(384, dtype=np.float32)
        assert [r[0] for r in app.execute("SELECT pk FROM vk.search('items', %s, 5)", (query,))] == ["1"]
        chunks = app.execute("SELECT pk, start_char, end_char FROM vk.search_chunks('items', %s, 5)", (query,))
        assert sorted(tuple(r) for r in chunks) == [("1", 0, 7), ("1", 7, 16)]  # 'an item' / ', changed'


def test_worker_role_embeds_trains_and_cannot_reconfigure(
    conn: psycopg.Connection, encoders: EncoderCache, login: Callable[[str], str]
) -> None:
    # A table the worker role was never granted: it reads it through vk's functions only.
    conn.execute("CREATE TABLE private_notes (id int PRIMARY KEY, body text)")
    conn.execute(
        "INSERT INTO private_notes SELECT g, 'private note number ' || g || ' about topic ' || (g % 7) "
        "FROM generate_series(1, 60) g"
    )
    conn.execute("SELECT vk.attach('private_notes', 'id', 'body')")
    # train --activate: the worker runs the activation too, over a table it cannot read (revision
    # 0006 re-created vk.coverage_v1 without SECURITY DEFINER, and this was refused).
    conn.execute(
        "SELECT vk.train('notes-tfidf', 'tfidf', '{\"dim\": 8, \"min_df\": 1, \"activate\": {}}', 'private_notes')"
    )
    worker_url = login("vk_worker")
    result = Service(worker_url, WorkerSettings(retry=FAST_RETRY), encoders=encoders).run(until_idle=True)
    assert len(result.jobs) == 2  # train, then its reembed (which builds the version's index)
    status: dict[str, int] = dict(
        conn.execute("SELECT model, embedded FROM vk.status WHERE collection = 'private_notes'").fetchall()
    )
    assert status == {"minilm@1": 60, "notes-tfidf@1": 60}
    assert (
        one(
            conn,
            "SELECT vk.model_label(m) FROM vk.collections c JOIN vk.models m ON m.id = c.default_model_id "
            "WHERE c.name = 'private_notes'",
        )
        == "notes-tfidf@1"
    )
    with psycopg.connect(worker_url, autocommit=True) as worker:
        with pytest.raises(errors.InsufficientPrivilege):
            worker.execute("SELECT count(*) FROM private_notes")
        with pytest.raises(errors.InsufficientPrivilege):
            worker.execute("SELECT vk.attach('vk.documents', 'id', 'body')")
        with pytest.raises(errors.InsufficientPrivilege):
            worker.execute("DELETE FROM vk.collections")


def test_functions_acting_for_their_callers_fix_their_search_path(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT p.proname, p.proconfig FROM pg_proc p WHERE p.pronamespace = 'vk'::regnamespace AND p.prosecdef"
    ).fetchall()
    assert {name for name, _ in rows} >= {"_on_insert_c1", "_on_update", "claim_v1", "embed_with_v1"}
    for name, config in rows:
        path = next((c for c in config or [] if c.startswith("search_path=")), None)
        assert path is not None and path.startswith("search_path=pg_catalog,") and path.endswith("pg_temp"), name


def test_no_login_role_but_the_owner_requeues_rows_through_vk_queue_pairs(
    conn: psycopg.Connection, db_url: str, login: Callable[[str], str]
) -> None:
    """vk._queue_pairs (revision 0024) runs as the owner and resets a queued row (attempts, error, dead):
    an application or a worker that calls it to revive or re-prioritise rows is refused, and a call the
    owner makes that waits on a locked queue row and is cancelled leaves the row as it was."""
    conn.execute("INSERT INTO vk.documents (body) VALUES ('a row gone dead')")
    conn.execute("UPDATE vk.queue SET dead = true, attempts = 5, last_error = 'boom', priority = 2")
    before = conn.execute("SELECT pk, model_id, dead, attempts, last_error, priority FROM vk.queue").fetchall()
    [(pk, model_id, *_)] = before
    call = "SELECT vk._queue_pairs(vk.collection_id('documents'), ARRAY[%s], ARRAY[%s::bigint], 0::smallint)"
    for group in ("vk_app", "vk_worker"):
        with psycopg.connect(login(group), autocommit=True) as caller, pytest.raises(errors.InsufficientPrivilege):
            caller.execute(call, (pk, model_id))
    with psycopg.connect(db_url) as holder, psycopg.connect(db_url, autocommit=True) as owner:
        holder.execute("SELECT 1 FROM vk.queue FOR UPDATE")  # a worker holding the row mid-batch
        owner.execute("SET statement_timeout = '300ms'")
        with pytest.raises(errors.QueryCanceled):
            owner.execute(call, (pk, model_id))
        holder.rollback()
    assert conn.execute("SELECT pk, model_id, dead, attempts, last_error, priority FROM vk.queue").fetchall() == before
    # Once nothing holds it, the owner's call does what it says.
    assert one(conn, call, (pk, model_id)) == 1
    assert conn.execute("SELECT dead, attempts, last_error, priority FROM vk.queue").fetchall() == [(False, 0, None, 0)]
