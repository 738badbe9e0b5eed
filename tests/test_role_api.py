"""Every documented call, made by a real login role of each group: each function and view that
docs/security.md's table and the SQL API and worker contract tables of docs/reference/api.md (the roles column)
list for vk_app, vk_worker or vk_admin runs for a member of that group, on a collection whose table
it may read, past every internal helper it uses; every call a role is not listed for is refused
with insufficient_privilege (42501).

One database is prepared for the whole module (the embedded corpus, a map, a next-vector model
with a prediction, an adopted table with recovered text, jobs, a schedule: the rows jobs would
write, written directly by the owner), and one session per role; each call runs in a transaction
that is rolled back, so the calls see the same database and leave it as it was. Text queries are
answered by a worker's text-query lane running for the module."""

import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

from helpers import one, running_lane
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache

APP, WORKER, ADMIN = "vk_app", "vk_worker", "vk_admin"
ROLES = (APP, WORKER, ADMIN)
READ = frozenset(ROLES)  # "app, worker, admin"
OPS = frozenset({WORKER, ADMIN})  # "worker, admin"
ADMIN_ONLY = frozenset({ADMIN})
NOBODY: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Call:
    """One documented call: its statement (%(name)s placeholders filled from the prepared
    database's values, %(text)s a query text of its own per role), the roles that may make it,
    and whether the rows it returns must not be empty."""

    name: str
    sql: str
    roles: frozenset[str]
    rows: bool = False
    # The SQLSTATE a permitted role gets here on purpose (vk.distribute on a server without Citus).
    answers: str | None = None


VEC = "%(vec)s::vector"

# The SQL API table ("SQL API", roles column) and the Security model table.
READ_API = [
    Call("search(vector)", f"SELECT * FROM vk.search('documents', {VEC}, 5)", READ, rows=True),
    Call("search(vector, filter)", f"SELECT * FROM vk.search('documents', {VEC}, 5, filter => '{{}}')", READ),
    Call("search(vector, model)", f"SELECT * FROM vk.search('documents', {VEC}, 5, 'minilm@1')", READ, rows=True),
    Call("search(text)", "SELECT * FROM vk.search('documents', %(text)s::text, 5)", READ, rows=True),
    Call("search_chunks(vector)", f"SELECT * FROM vk.search_chunks('documents', {VEC}, 5)", READ, rows=True),
    Call("search_chunks(text)", "SELECT * FROM vk.search_chunks('documents', %(text)s::text, 5)", READ, rows=True),
    Call("hybrid_search(text)", "SELECT * FROM vk.hybrid_search('documents', %(text)s, 5)", READ, rows=True),
    Call(
        "hybrid_search(keyword only)",
        "SELECT * FROM vk.hybrid_search('documents', %(word)s, 5, vector_weight => 0)",
        READ,
        rows=True,
    ),
    Call(
        "hybrid_search(keyword, filter)",
        "SELECT * FROM vk.hybrid_search('documents', %(word)s, 5, filter => '{}', vector_weight => 0)",
        READ,
    ),
    Call("embed", "SELECT vk.embed('minilm', %(text)s)", READ, rows=True),
    Call("similar", "SELECT * FROM vk.similar('documents', %(pk)s, 5)", READ, rows=True),
    Call("recover", f"SELECT * FROM vk.recover({VEC}, 'minilm', 3)", READ, rows=True),
    Call("recover(only_collection)", f"SELECT * FROM vk.recover({VEC}, 'minilm@1', 3, 'documents')", READ, rows=True),
    Call("map_gaps", "SELECT * FROM vk.map_gaps('map@1', 20, 1)", READ, rows=True),
    Call("predict_next", "SELECT vk.predict_next('documents', '3', 'next@1')", READ, rows=True),
    Call("predicted", "SELECT * FROM vk.predicted(%(prediction_job)s, 3)", READ, rows=True),
    Call("recovered_text", "SELECT * FROM vk.recovered_text('legacy')", READ, rows=True),
    Call("model", "SELECT * FROM vk.model('minilm')", READ, rows=True),
    Call("model_label", "SELECT vk.model_label(vk.model('minilm@1'))", READ, rows=True),
    Call("model_role", "SELECT vk.model_role(m) FROM vk.models m", READ, rows=True),
    Call("row_vector", "SELECT vk.row_vector('documents', %(pk)s)", READ, rows=True),
    Call("collection_id", "SELECT vk.collection_id('documents')", READ, rows=True),
    Call("probe_text", "SELECT vk.probe_text()", READ, rows=True),
    Call("status (view)", "SELECT * FROM vk.status WHERE collection = 'documents'", READ, rows=True),
]

OPERATIONS = [
    # Operators only: each registers SQL its author's rights run (attach, set_metadata, set_text) or a table an
    # owner-run function reads (adopt); a worker process needs none of them.
    Call("attach", "SELECT vk.attach('attachable', 'id', 'body')", ADMIN_ONLY),
    Call("set_metadata", "SELECT vk.set_metadata('documents', 'jsonb_build_object(''n'', id %% 3)')", ADMIN_ONLY),
    Call("set_text", "SELECT vk.set_text('documents', 'body')", ADMIN_ONLY),
    Call("set_text_search", "SELECT vk.set_text_search('documents', 'simple')", OPS),
    Call("add_model", "SELECT vk.add_model('documents', 'spare@1')", OPS),
    Call("retry_dead", "SELECT vk.retry_dead('documents')", OPS),
    Call("set_chunking", "SELECT vk.set_chunking('documents', 'tokens', 64)", OPS),
    # On a collection with no order yet: an order another role wrote is that role's function (vk_expr).
    Call("set_order", "SELECT vk.set_order('chapters', 'doc::text', 'id')", OPS),
    Call("train", """SELECT vk.train('tiny', 'tfidf', '{"dim": 8, "min_df": 1}', collection => 'documents')""", OPS),
    Call("reembed", "SELECT vk.reembed('documents', 'minilm@1')", OPS),
    Call("set_storage", "SELECT vk.set_storage('spare@1', 'halfvec')", OPS),
    Call(
        "schedule_train",
        """SELECT vk.schedule_train('tiny', 'tfidf', '1 day', '{"dim": 8, "min_df": 1}', collection => 'documents')""",
        OPS,
    ),
    Call("unschedule", "SELECT vk.unschedule('scheduled')", OPS),
    Call("cancel_job", "SELECT vk.cancel_job(%(train_job)s)", OPS),
    Call("activate", "SELECT vk.activate('documents', 'minilm@1')", OPS),
    Call("activate(map)", "SELECT vk.activate('documents', 'map@1')", OPS),
    Call("adopt", "SELECT vk.adopt('legacy2', 'id', 'v', 'legacy2')", ADMIN_ONLY),
    Call("recover_adopted", "SELECT vk.recover_adopted('legacy', 'nearest')", OPS),
    Call("evaluate_recovery", "SELECT vk.evaluate_recovery('documents', 'minilm@1')", OPS),
    # "worker, admin" in the SQL API table (vk.keep_newest_v1, which a worker runs after a scheduled
    # train, retires versions through it); the Security model table's "may not ... retire" of vk_worker
    # contradicts it.
    Call("retire", "SELECT vk.retire('spare@1', confirm => true)", OPS),
    Call("detach", "SELECT vk.detach('notes')", ADMIN_ONLY),
    Call("set_hybrid_defaults", "SELECT vk.set_hybrid_defaults('documents', 'rrf', 1, 1)", ADMIN_ONLY),
    Call(
        "tune_hybrid",
        """SELECT vk.tune_hybrid('documents', jsonb_build_array(jsonb_build_object(
             'query', %(text)s::text, 'relevant', jsonb_build_array(%(pk)s::text))))""",
        ADMIN_ONLY,
    ),
    Call("rebuild_keyword_stats", "SELECT vk.rebuild_keyword_stats('documents')", ADMIN_ONLY),
    # Its work is tested on a Citus cluster (tests/test_citus.py); here, who may ask.
    Call("distribute", "SELECT * FROM vk.distribute()", ADMIN_ONLY, answers="0A000"),
]

# The worker contract table: every vk.*_v1 function, "worker, admin".
CONTRACT = [
    Call(name, sql, OPS)
    for name, sql in [
        ("worker_contract", "SELECT vk.worker_contract()"),
        ("distributed_v1", "SELECT vk.distributed_v1()"),
        ("collect_captured_v1", "SELECT vk.collect_captured_v1()"),
        ("move_captured_v1", "SELECT vk.move_captured_v1()"),
        ("claim_v1", "SELECT * FROM vk.claim_v1(10)"),
        ("claim_live_v1", "SELECT * FROM vk.claim_live_v1(10)"),
        ("chunking_v1", "SELECT vk.chunking_v1(%(cid)s)"),
        ("compact_keyword_stats_v1", "SELECT vk.compact_keyword_stats_v1()"),
        (
            "put_chunk_v1",
            f"SELECT vk.put_chunk_v1(%(cid)s, %(pk)s, %(mid)s, 0, 0, 4, {VEC}, 'text', sha256('text'), false)",
        ),
        ("finish_row_v1", "SELECT vk.finish_row_v1(%(cid)s, %(pk)s, %(mid)s, 1)"),
        ("fail_row_v1", "SELECT vk.fail_row_v1(%(note_cid)s, '1', %(mid)s, 'an error', 3, 0.0)"),
        ("defer_row_v1", "SELECT vk.defer_row_v1(%(note_cid)s, '1', %(mid)s, 'a provider throttles', 5.0)"),
        ("record_api_usage_v1", "SELECT vk.record_api_usage_v1(%(mid)s, 0, 1, 2, 30, 0, 0.5, 0)"),
        ("model_v1", "SELECT vk.model_v1(%(mid)s)"),
        ("collection_v1", "SELECT vk.collection_v1(%(cid)s)"),
        ("collection_model_v1", "SELECT vk.collection_model_v1('documents', NULL)"),
        ("record_fingerprint_v1", f"SELECT vk.record_fingerprint_v1(%(spare_id)s, {VEC})"),
        (
            "register_model_v1",
            "SELECT vk.register_model_v1('registered', 'sentence-transformers', 384, 'cosine', '{}', NULL)",
        ),
        ("set_encoder_v1", f"SELECT vk.set_encoder_v1('legacy@1', 'minilm', {VEC})"),
        ("embed_with_v1", "SELECT vk.embed_with_v1(vk.collection_v1(%(cid)s), vk.model_v1(%(mid)s))"),
        ("backfill_v1", "SELECT vk.backfill_v1(%(cid)s, %(spare_id)s)"),
        ("index_plan_v1", "SELECT * FROM vk.index_plan_v1(%(cid)s, %(mid)s)"),
        ("build_index_v1", "SELECT vk.build_index_v1(%(cid)s, %(mid)s)"),
        ("queue_state_v1", "SELECT * FROM vk.queue_state_v1()"),
        ("running_jobs_v1", "SELECT * FROM vk.running_jobs_v1()"),
        ("submit_job_v1", "SELECT vk.submit_job_v1('train', '{}', %(cid)s)"),
        ("claim_job_v1", "SELECT * FROM vk.claim_job_v1('another worker', 30)"),
        ("heartbeat_job_v1", "SELECT vk.heartbeat_job_v1(%(running_job)s, 'w', 30, '{}')"),
        ("finish_job_v1", "SELECT vk.finish_job_v1(%(running_job)s, 'w', '{}', NULL, 'log')"),
        ("fail_job_v1", "SELECT vk.fail_job_v1(%(running_job)s, 'w', 'an error', 'log')"),
        ("release_job_v1", "SELECT vk.release_job_v1(%(running_job)s, 'w', '{}')"),
        ("run_due_schedules_v1", "SELECT vk.run_due_schedules_v1()"),
        ("enqueue_page_v1", "SELECT * FROM vk.enqueue_page_v1(%(cid)s, %(mid)s, NULL, 10)"),
        ("snapshot_v1", "SELECT vk.snapshot_v1(%(cid)s)"),
        ("record_snapshot_v1", "SELECT vk.record_snapshot_v1(%(running_job)s, %(cid)s)"),
        ("collection_texts_v1", "SELECT count(*) FROM vk.collection_texts_v1(%(cid)s)"),
        ("queue_counts_v1", "SELECT * FROM vk.queue_counts_v1(%(cid)s, %(mid)s)"),
        ("reserve_model_v1", "SELECT vk.reserve_model_v1(%(train_job)s, 'reserved', 'tfidf', '{}')"),
        ("model_trained_v1", "SELECT vk.model_trained_v1(%(pending_id)s, 8, '{}', '{}', NULL)"),
        ("model_failed_v1", "SELECT vk.model_failed_v1(%(pending_id)s)"),
        ("store_artifact_v1", "SELECT vk.store_artifact_v1(%(spare_id)s, 'other', '\\x01'::bytea)"),
        ("artifact_v1", "SELECT * FROM vk.artifact_v1(%(spare_id)s, 'weights')"),
        ("keep_newest_v1", "SELECT vk.keep_newest_v1(%(cid)s, 'minilm', 3)"),
        ("collection_pairs_v1", "SELECT count(*) FROM vk.collection_pairs_v1(%(cid)s, %(mid)s)"),
        ("row_vectors_v1", "SELECT * FROM vk.row_vectors_v1(%(cid)s, %(mid)s, ARRAY[%(pk)s])"),
        (
            "recover_nearest_page_v1",
            "SELECT * FROM vk.recover_nearest_page_v1(%(adopted_id)s, NULL, 10, %(mid)s, NULL)",
        ),
        ("adopted_page_v1", "SELECT * FROM vk.adopted_page_v1(%(adopted_id)s, NULL, 10)"),
        (
            "put_recovered_v1",
            "SELECT vk.put_recovered_v1(%(adopted_id)s, '1', 'text', 0.5, %(legacy_id)s, %(mid)s, NULL, '{}')",
        ),
        (
            "put_recovered_v2",
            "SELECT vk.put_recovered_v2(%(adopted_id)s, '1', 'nearest', 'text', 0.5, %(legacy_id)s, %(mid)s, "
            "'documents', %(pk)s, NULL, '{}')",
        ),
        ("adopted_v1", "SELECT vk.adopted_v1('legacy')"),
        ("recovered_summary_v1", "SELECT * FROM vk.recovered_summary_v1(%(adopted_id)s, 'nearest')"),
        ("inverters_v1", "SELECT * FROM vk.inverters_v1(%(mid)s)"),
        ("maps_of_v1", "SELECT * FROM vk.maps_of_v1(%(cid)s, %(mid)s)"),
        ("add_map_v1", "SELECT vk.add_map_v1(%(map_id)s, %(cid)s, %(mid)s)"),
        ("put_coordinates_v1", "SELECT vk.put_coordinates_v1(%(cid)s, %(pk)s, %(map_id)s, 0.5, 0.5, sha256('x'))"),
        ("sequence_windows_v1", "SELECT count(*) FROM vk.sequence_windows_v1(%(cid)s, %(mid)s, 2)"),
        ("group_tail_v1", "SELECT * FROM vk.group_tail_v1(%(cid)s, %(mid)s, '3', 2)"),
        (
            "put_prediction_v1",
            f"SELECT vk.put_prediction_v1(%(prediction_job)s, %(cid)s, %(next_id)s, '3', ARRAY['30'], {VEC})",
        ),
        ("put_prediction_text_v1", """SELECT vk.put_prediction_text_v1(%(prediction_job)s, '{"method": "nearest"}')"""),
        ("claim_embed_requests_v1", "SELECT * FROM vk.claim_embed_requests_v1(10)"),
        ("answer_embed_request_v1", f"SELECT vk.answer_embed_request_v1(-1, {VEC})"),
        ("fail_embed_request_v1", "SELECT vk.fail_embed_request_v1(-1, 'an error')"),
        ("prune_embed_cache_v1", "SELECT vk.prune_embed_cache_v1()"),
        ("search_models_v1", "SELECT * FROM vk.search_models_v1()"),
    ]
]

# The Security model table's tables: applications write vk.documents and read the API's tables
# (never the queue, artifacts or text-query tables) and change no model, job, vector or queue row;
# workers write what jobs write; nobody but an operator creates a collection; no vk role uses dblink.
TABLES = [
    Call(
        "insert vk.documents", "INSERT INTO vk.documents (body) VALUES ('written by a role')", frozenset({APP, ADMIN})
    ),
    Call(
        "update vk.documents", "UPDATE vk.documents SET body = body WHERE id = %(pk)s::bigint", frozenset({APP, ADMIN})
    ),
    Call("select vk.embeddings", "SELECT pk, body FROM vk.embeddings LIMIT 1", READ, rows=True),
    Call("select vk.collections", "SELECT * FROM vk.collections", READ, rows=True),
    Call("select vk.models", "SELECT * FROM vk.models", READ, rows=True),
    Call("select vk.jobs", "SELECT * FROM vk.jobs", READ, rows=True),
    Call("select vk.coordinates", "SELECT * FROM vk.coordinates LIMIT 1", READ, rows=True),
    Call("select vk.predictions", "SELECT * FROM vk.predictions", READ, rows=True),
    Call("select vk.recovered", "SELECT * FROM vk.recovered", READ, rows=True),
    Call("select vk.queue", "SELECT * FROM vk.queue", OPS),
    Call("select vk.model_artifacts", "SELECT * FROM vk.model_artifacts", OPS),
    Call("select vk.embed_requests", "SELECT * FROM vk.embed_requests", OPS),
    Call("select vk.embed_cache", "SELECT * FROM vk.embed_cache", OPS),
    Call("insert vk.queue", "INSERT INTO vk.queue (collection_id, pk, model_id) VALUES (%(cid)s, 'x', %(mid)s)", OPS),
    Call("update vk.embeddings", "UPDATE vk.embeddings SET body = body WHERE pk = %(pk)s", OPS),
    Call("delete vk.coordinates", "DELETE FROM vk.coordinates WHERE pk = %(pk)s", OPS),
    Call("update vk.models", "UPDATE vk.models SET updated_at = now() WHERE id = %(mid)s", OPS),
    Call("insert vk.jobs", "INSERT INTO vk.jobs (kind) VALUES ('train')", OPS),
    Call(
        "insert vk.collections",
        "INSERT INTO vk.collections (name) SELECT name FROM vk.collections WHERE false",
        ADMIN_ONLY,
    ),
    # The source table of a collection: granted to the application and the operator, not to
    # workers, who read it only through vk's functions.
    Call("select a source table", "SELECT count(*) FROM notes", frozenset({APP, ADMIN}), rows=True),
    Call("use dblink", "SELECT vk_dblink.dblink_get_connections()", NOBODY),
]

CALLS = READ_API + OPERATIONS + CONTRACT + TABLES


@dataclass
class World:
    """The prepared database: its URL, the values the calls name, and one session per role."""

    url: str
    values: dict[str, Any]
    sessions: dict[str, psycopg.Connection]


_names = itertools.count()


def prepare(conn: psycopg.Connection) -> dict[str, Any]:
    """As the owner: the rows every documented call needs, written the way the workers and jobs
    that normally write them would (their contract functions), without training anything."""
    cid = one(conn, "SELECT vk.collection_id('documents')")
    mid = one(conn, "SELECT id FROM vk.models WHERE name = 'minilm' AND version = 1")
    pk = "1"
    word = one(conn, "SELECT (regexp_match(body, '[A-Za-z]{7,}'))[1] FROM vk.documents WHERE id = %s::bigint", (pk,))
    vec = one(
        conn, "SELECT embedding::text FROM vk.embeddings WHERE collection_id = %s AND pk = %s AND chunk = 0", (cid, pk)
    )
    # A source table only applications and operators may read, attached (its rows stay queued), and
    # one any role may read and attach.
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    conn.execute("INSERT INTO notes VALUES (1, 'a note'), (2, 'another note')")
    conn.execute("GRANT SELECT ON notes TO vk_app, vk_admin")
    conn.execute("SELECT vk.attach('notes', 'id', 'body')")
    note_cid = one(conn, "SELECT vk.collection_id('notes')")
    conn.execute("CREATE TABLE chapters (id int PRIMARY KEY, doc int, body text)")
    conn.execute("INSERT INTO chapters VALUES (1, 1, 'one'), (2, 1, 'two'), (3, 2, 'three')")
    conn.execute("GRANT SELECT ON chapters TO vk_app, vk_worker, vk_admin")
    conn.execute("SELECT vk.attach('chapters', 'id', 'body')")
    conn.execute("CREATE TABLE attachable (id int PRIMARY KEY, body text)")
    conn.execute("INSERT INTO attachable VALUES (1, 'one'), (2, 'two')")
    conn.execute("GRANT SELECT, TRIGGER ON attachable TO vk_app, vk_worker, vk_admin")
    # A map of documents drawn from minilm@1, its coordinates on a grid with holes.
    map_params = Jsonb({"collection_id": cid, "source_model_id": mid, "source": "minilm@1"})
    map_id = one(conn, "SELECT id FROM vk.register_model_v1('map', 'umap', 2, 'cosine', %s, NULL)", (map_params,))
    conn.execute("SELECT vk.add_map_v1(%s, %s, %s)", (map_id, cid, mid))
    conn.execute(
        "INSERT INTO vk.coordinates (collection_id, pk, model_id, x, y, text_sha256) "
        "SELECT e.collection_id, e.pk, %s, e.pk::int %% 20, e.pk::int / 20, e.text_sha256 FROM vk.embeddings e "
        "WHERE e.collection_id = %s AND e.model_id = %s AND e.chunk = 0 AND e.pk::int %% 3 <> 0",
        (map_id, cid, mid),
    )
    # Documents in groups of ten, a next-vector model of them, and one prediction it made.
    conn.execute("SELECT vk.set_order('documents', '(id / 10)::text', 'id')")
    next_params = Jsonb({"collection_id": cid, "source_model_id": mid, "context": 2})
    next_id = one(
        conn, "SELECT id FROM vk.register_model_v1('next', 'lvm-gru', 384, 'cosine', %s, NULL)", (next_params,)
    )
    prediction_job = one(conn, "SELECT vk.submit_job_v1('predict', '{\"group_key\": \"3\"}', %s, %s)", (cid, next_id))
    conn.execute("UPDATE vk.jobs SET status = 'succeeded', finished_at = now() WHERE id = %s", (prediction_job,))
    conn.execute(
        "SELECT vk.put_prediction_v1(%s, %s, %s, '3', ARRAY['30', '31'], %s::vector)",
        (prediction_job, cid, next_id, vec),
    )
    # An adopted table of vectors (minilm's, proven by fingerprint) with its text recovered by nearest
    # stored text, and another table to adopt.
    for table in ("legacy", "legacy2"):
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v vector(384))")
        conn.execute(
            f"INSERT INTO {table} SELECT e.pk::int, e.embedding FROM vk.embeddings e "
            "WHERE e.collection_id = %s AND e.model_id = %s AND e.chunk = 0 ORDER BY e.pk::int LIMIT 5",
            (cid, mid),
        )
        conn.execute(f"GRANT SELECT ON {table} TO vk_app, vk_worker, vk_admin")
    conn.execute("SELECT vk.adopt('legacy', 'id', 'v', 'legacy')")
    adopted_id = one(conn, "SELECT id FROM vk.adopted WHERE name = 'legacy'")
    legacy_id = one(conn, "SELECT model_id FROM vk.adopted WHERE id = %s", (adopted_id,))
    conn.execute(
        "SELECT vk.set_encoder_v1('legacy@1', 'minilm', (SELECT fingerprint FROM vk.models WHERE id = %s))", (mid,)
    )
    conn.execute("SELECT * FROM vk.recover_nearest_page_v1(%s, NULL, 100, %s, NULL)", (adopted_id, mid))
    # An encoder version registered and used nowhere, with an artifact.
    spare_id = one(
        conn, "SELECT id FROM vk.register_model_v1('spare', 'sentence-transformers', 384, 'cosine', '{}', NULL)"
    )
    conn.execute("SELECT vk.store_artifact_v1(%s, 'weights', '\\x00'::bytea)", (spare_id,))
    # A queued train job with the version it reserved, a job a worker 'w' runs, and a schedule.
    train_job = one(
        conn, """SELECT vk.train('pending', 'tfidf', '{"dim": 8, "min_df": 1}', collection => 'documents')"""
    )
    pending_id = one(conn, "SELECT vk.reserve_model_v1(%s, 'pending', 'tfidf', '{}')", (train_job,))
    running_job = one(conn, "SELECT vk.submit_job_v1('reembed', '{}', %s, %s)", (cid, mid))
    conn.execute(
        "UPDATE vk.jobs SET status = 'running', worker = 'w', attempts = 1, started_at = now(), "
        "lease_until = now() + interval '1 day' WHERE id = %s",
        (running_job,),
    )
    conn.execute("""SELECT vk.schedule_train('scheduled', 'tfidf', '1 day', '{"dim": 8, "min_df": 1}', 'documents')""")
    return {
        "cid": cid,
        "mid": mid,
        "pk": pk,
        "vec": vec,
        "word": word,
        "note_cid": note_cid,
        "map_id": map_id,
        "next_id": next_id,
        "prediction_job": prediction_job,
        "adopted_id": adopted_id,
        "legacy_id": legacy_id,
        "spare_id": spare_id,
        "train_job": train_job,
        "pending_id": pending_id,
        "running_job": running_job,
    }


@pytest.fixture(scope="module")
def world(server_url: str, corpus_template: str, lane_encoders: EncoderCache) -> Iterator[World]:
    """The corpus database prepared once for the module, a login role of each group (no superuser),
    and a worker's text-query lane answering text queries."""
    from conftest import CORPUS_TEMPLATE, as_user, drop_database, fresh_database

    name, url = fresh_database(server_url, CORPUS_TEMPLATE)
    logins: dict[str, str] = {}
    sessions: dict[str, psycopg.Connection] = {}
    try:
        with connect(url, autocommit=True) as conn:
            values = prepare(conn)
        with psycopg.connect(server_url, autocommit=True) as admin:
            for group in ROLES:
                logins[group] = f"t_api_{group}_{os.getpid()}_{next(_names)}"
                admin.execute(f"CREATE ROLE {logins[group]} LOGIN IN ROLE {group}")
        with running_lane(url, lane_encoders):
            for group, login in logins.items():
                session = psycopg.connect(as_user(url, login), autocommit=True)
                session.execute("SET statement_timeout = '60s'")
                session.execute("SET vk.embed_timeout = '30s'")
                sessions[group] = session
            yield World(url, values, sessions)
    finally:
        for session in sessions.values():
            session.close()
        for login in logins.values():
            with psycopg.connect(url, autocommit=True) as owner:
                owner.execute(f"DROP OWNED BY {login} CASCADE")
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(f"DROP ROLE {login}")
        drop_database(server_url, name)


def run(world: World, role: str, call: Call) -> list[tuple[Any, ...]]:
    """Make the call as the role's login, in a transaction rolled back afterwards."""
    session = world.sessions[role]
    params = {**world.values, "text": f"what {role} asks about {call.name}, rising bread dough"}
    with session.transaction(force_rollback=True), session.cursor() as cur:
        cur.execute(call.sql, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def _case(role: str, call: Call) -> Any:
    # A query text goes to a worker through dblink: without it the call answers 0A000 (tests/test_managed.py).
    text_query = "%(text)s" in call.sql and role in call.roles
    return pytest.param(role, call, id=f"{role}-{call.name}", marks=[pytest.mark.needs_dblink] if text_query else [])


CASES = [_case(role, call) for call in CALLS for role in ROLES]


@pytest.mark.parametrize(("role", "call"), CASES)
def test_each_role_makes_the_calls_documented_for_it_and_no_other(world: World, role: str, call: Call) -> None:
    if role not in call.roles:
        with pytest.raises(errors.InsufficientPrivilege):
            run(world, role, call)
        return
    if call.answers is not None:
        with pytest.raises(psycopg.Error) as refused:
            run(world, role, call)
        assert refused.value.sqlstate == call.answers, refused.value
        return
    try:
        rows = run(world, role, call)
    except psycopg.Error as exc:
        pytest.fail(f"{role} may make {call.name} (docs/reference/api.md) but got {exc.sqlstate}: {exc}\n{call.sql}")
    if call.rows:
        assert rows and rows[0] != (None,), f"{role}: {call.name} returned nothing"


def test_every_public_function_is_called(world: World) -> None:
    """The calls above cover every public function of docs/reference/api.md's tables and of the installed schema
    (tests/test_catalogue.py checks that the two are the same)."""
    from test_catalogue import documented_roles

    called = {name for call in CALLS for name in _functions(call.sql)}
    assert set(documented_roles()) - called == set()
    with connect(world.url) as conn:
        installed = {
            name
            for (name,) in conn.execute(
                "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'vk'::regnamespace AND p.proname !~ '^_'"
            )
        }
    assert installed - called == set()


def _functions(sql: str) -> set[str]:
    return set(re.findall(r"\bvk\.(\w+)\(", sql))
