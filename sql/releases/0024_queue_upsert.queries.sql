-- Every statement the Python side sends, by name. psycopg placeholders
-- (%(name)s); identifiers never come from Python strings.
--
-- Workers and job runners call only the worker contract (vk.*_v1, see
-- sql/definitions/20_queue.sql) and the public API; the other statements here
-- are reads for the command line.
--
-- Sections (lines starting with "-- ==") group the statements by their caller.

-- == The batch: claim, write, fail and defer queue rows (workers/embed.py, workers/worker.py)

-- name: claim
-- Lock a batch of ready queue rows with their current text (see vk.claim_v1).
SELECT collection_id, pk, model_id, attempts, body FROM vk.claim_v1(%(batch_size)s);

-- name: claim_live
-- The same, only the rows the application wrote for its searched versions (see vk.claim_live_v1).
SELECT collection_id, pk, model_id, attempts, body FROM vk.claim_live_v1(%(batch_size)s);

-- name: queue_updates
-- Queue rows this session has updated and not yet reported to the statistics, which PostgreSQL does only
-- between transactions: read first in a batch's transaction, it is what claim_failures counts the
-- claim's updates from.
SELECT pg_stat_get_xact_tuples_updated('vk.queue'::regclass);

-- name: claim_failures
-- Per model version (name@version), the rows that the claim of this transaction failed: vk.claim_v1
-- fails a row whose text or metadata expression raises (attempts + 1, dead after 5) and does not return
-- it. They are the queue rows this transaction changed (xmin) that the claim did not return (a plain
-- read of vk.queue, which workers may SELECT). The queue
-- is searched only when the claim updated more rows than those of its rows it returned (their metadata:
-- the one other update a claim makes), or when track_counts is off; so a claim that failed none reads
-- only its own rows (by key).
WITH returned AS (
    SELECT * FROM unnest(%(collection_ids)s::bigint[], %(pks)s::text[], %(model_ids)s::bigint[])
                  AS r(collection_id, pk, model_id)
), mine AS (
    SELECT pg_current_xact_id_if_assigned()::xid AS xid
), gate AS (
    SELECT NOT current_setting('track_counts')::boolean
           OR pg_stat_get_xact_tuples_updated('vk.queue'::regclass) - %(updates_before)s
              > (SELECT count(*) FROM vk.queue q JOIN returned r USING (collection_id, pk, model_id)
                 WHERE q.xmin = (SELECT xid FROM mine)) AS failed_some
)
-- (The label spelt out: on Citus the join runs on the shards, where a row of the reference table vk.models
-- has the shard's row type and vk.model_label(vk.models) does not resolve.)
SELECT m.name || '@' || m.version AS model, count(*) AS failed
FROM vk.queue q JOIN vk.models m ON m.id = q.model_id
WHERE (SELECT failed_some FROM gate) AND q.xmin = (SELECT xid FROM mine)
  AND NOT EXISTS (SELECT 1 FROM returned r
                  WHERE r.collection_id = q.collection_id AND r.pk = q.pk AND r.model_id = q.model_id)
GROUP BY m.name, m.version;

-- name: upsert_chunk
-- One chunk's vector (chunk 0 of an unchunked row) and the exact text it came
-- from, its offsets in the row's text, the hash of that whole text.
SELECT vk.put_chunk_v1(%(collection_id)s, %(pk)s, %(model_id)s, %(chunk)s, %(start_char)s, %(end_char)s,
                       %(embedding)s, %(body)s, %(text_sha256)s, %(truncated)s);

-- name: finish_row
-- A claimed row is done: its chunks from `chunks` on go (all of them when the
-- text is empty: chunks 0), and its queue row with them.
SELECT vk.finish_row_v1(%(collection_id)s, %(pk)s, %(model_id)s, %(chunks)s);

-- name: collection_chunking
SELECT vk.chunking_v1(%(collection_id)s);

-- name: fail
-- Retry later with exponential backoff; dead after max_attempts, with its error.
SELECT vk.fail_row_v1(%(collection_id)s, %(pk)s, %(model_id)s, %(error)s, %(max_attempts)s, %(backoff)s);

-- name: defer
-- The row's encoder (an API) is busy or unreachable: back in the queue after seconds, attempts kept.
SELECT vk.defer_row_v1(%(collection_id)s, %(pk)s, %(model_id)s, %(reason)s, %(seconds)s);

-- name: record_api_usage
-- What an encoder behind an API used: for the job given, else the version's running reembed job if there
-- is one (text queries give 0: outside any job).
SELECT vk.record_api_usage_v1(
    %(model_id)s,
    coalesce(%(job_id)s::bigint, (SELECT max(j.id) FROM vk.jobs j
                                  WHERE j.kind = 'reembed' AND j.model_id = %(model_id)s AND j.status = 'running')),
    %(requests)s, %(inputs)s, %(tokens)s, %(retries)s, %(throttled_seconds)s, %(failures)s);

-- name: has_keyword_stats
-- Schemas before revision 0020 keep no BM25 statistics.
SELECT to_regprocedure('vk.compact_keyword_stats_v1()') IS NOT NULL;

-- name: compact_keyword_stats
-- After a batch: fold the BM25 counts its writes appended (33_keywords.sql).
SELECT vk.compact_keyword_stats_v1();

-- name: listen
-- The channel the queue triggers notify (vk._enqueued).
LISTEN vk_queue;

-- name: distributed
-- Whether to collect what Citus nodes captured (vk.collect_captured_v1, which
-- answers 0 unless vk is distributed): a schema older than revision 0017 and
-- a server without Citus have nothing to collect.
SELECT to_regprocedure('vk.collect_captured_v1()') IS NOT NULL
   AND to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL;

-- name: collect_captured
-- On Citus: what every node's triggers captured, to the queue (its count).
SELECT vk.collect_captured_v1();

-- == Text queries: the worker's text-query lane (workers/text_queries.py)

-- name: has_live_claim
-- Schemas before revision 0015 have no separate claim for the application's rows.
SELECT to_regprocedure('vk.claim_live_v1(integer)') IS NOT NULL;

-- name: has_text_query_lane
-- Schemas before revision 0011 serve no text queries.
SELECT to_regprocedure('vk.claim_embed_requests_v1(integer)') IS NOT NULL;

-- name: listen_embed
-- The channel text queries notify (vk._request_embedding).
LISTEN vk_embed;

-- name: claim_embed_requests
SELECT id, model_id, input FROM vk.claim_embed_requests_v1(%(batch_size)s);

-- name: answer_embed_request
SELECT vk.answer_embed_request_v1(%(id)s, %(embedding)s);

-- name: release_embed_requests
-- The claim's advisory locks, held until the answers are committed: their callers wake now.
SELECT pg_advisory_unlock_all();

-- name: fail_embed_request
SELECT vk.fail_embed_request_v1(%(id)s, %(error)s);

-- name: prune_embed_cache
SELECT vk.prune_embed_cache_v1();

-- name: search_models
SELECT model_id FROM vk.search_models_v1() AS model_id;

-- == Model versions, kinds and artifacts (db/registry.py, db/kinds.py, db/artifacts.py)

-- name: model_by_id
SELECT id, name, version, kind, dim, distance, params, fingerprint, status
FROM vk.model_v1(%(id)s) WHERE id IS NOT NULL;

-- name: model_by_spec
SELECT id, name, version, kind, dim, distance, params, fingerprint, status
FROM vk.model(%(spec)s);

-- name: collection_model
-- The model a collection is searched with (its default when spec is NULL).
SELECT id, name, version, kind, dim, distance, params, fingerprint, status
FROM vk.collection_model_v1(%(collection)s, %(spec)s);

-- name: record_fingerprint
-- Trust on first use: the first worker to load an encoder records its probe vector.
SELECT vk.record_fingerprint_v1(%(id)s, %(fingerprint)s);

-- name: probe_text
SELECT vk.probe_text();

-- name: register_model
SELECT id, name, version, kind, dim, distance, params, fingerprint, status
FROM vk.register_model_v1(%(name)s, %(kind)s, %(dim)s, %(distance)s, %(params)s, %(fingerprint)s);

-- name: model_trained
SELECT vk.model_trained_v1(%(id)s, %(dim)s, %(params)s, %(metrics)s, %(fingerprint)s);

-- name: sync_model_kind
INSERT INTO vk.model_kinds (kind, role, trainable, loadable, params, description)
VALUES (%(kind)s, %(role)s, %(trainable)s, %(loadable)s, %(params)s, %(description)s)
ON CONFLICT (kind) DO UPDATE
SET role = EXCLUDED.role, trainable = EXCLUDED.trainable, loadable = EXCLUDED.loadable,
    params = EXCLUDED.params, description = EXCLUDED.description;

-- name: drop_other_model_kinds
DELETE FROM vk.model_kinds WHERE kind <> ALL (%(kinds)s);

-- name: store_artifact
SELECT vk.store_artifact_v1(%(model_id)s, %(name)s, %(data)s);

-- name: load_artifact
SELECT data, sha256 FROM vk.artifact_v1(%(model_id)s, %(name)s);

-- == The job protocol and train and reembed jobs (workers/jobs/)

-- name: claim_job
SELECT * FROM vk.claim_job_v1(%(worker)s, %(lease)s, %(kinds)s);

-- name: heartbeat_job
SELECT vk.heartbeat_job_v1(%(id)s, %(worker)s, %(lease)s, %(progress)s);

-- name: finish_job
SELECT vk.finish_job_v1(%(id)s, %(worker)s, %(metrics)s, %(model_id)s, %(log)s);

-- name: fail_job
SELECT vk.fail_job_v1(%(id)s, %(worker)s, %(error)s, %(log)s);

-- name: release_job
SELECT vk.release_job_v1(%(id)s, %(worker)s, %(progress)s);

-- name: run_due_schedules
SELECT vk.run_due_schedules_v1();

-- name: listen_jobs
LISTEN vk_jobs;

-- name: record_snapshot
SELECT vk.record_snapshot_v1(%(id)s, %(collection_id)s);

-- name: enqueue_page
SELECT last_key, scanned, queued FROM vk.enqueue_page_v1(%(collection_id)s, %(model_id)s, %(after)s, %(page)s);

-- name: queue_counts
-- Queue rows of (collection, model) still there, the dead ones, and one dead row's error.
SELECT queued, dead, first_error FROM vk.queue_counts_v1(%(collection_id)s, %(model_id)s);

-- name: collection_texts
SELECT pk, body FROM vk.collection_texts_v1(%(collection_id)s);

-- name: collection_pairs
-- (text, vector) pairs of a collection under a model: what a distilled model learns from.
SELECT pk, body, embedding FROM vk.collection_pairs_v1(%(collection_id)s, %(model_id)s);

-- name: row_vectors
-- One vector a row (the mean of its chunks' vectors), with the hash of its text, in key order.
SELECT pk, embedding, text_sha256 FROM vk.row_vectors_v1(%(collection_id)s, %(model_id)s, %(pks)s::text[]);

-- name: reserve_model
-- The version a train job produces, reserved at its start (status training)
-- and recorded on the job.
SELECT vk.reserve_model_v1(%(job_id)s, %(name)s, %(kind)s, %(params)s);

-- name: model_failed
SELECT vk.model_failed_v1(%(id)s);

-- name: submit_reembed
SELECT vk.submit_job_v1('reembed', %(params)s, %(collection_id)s, %(model_id)s);

-- name: backfill
SELECT vk.backfill_v1(%(collection_id)s, %(model_id)s);

-- name: index_plan
SELECT state, statements, concurrent FROM vk.index_plan_v1(%(collection_id)s, %(model_id)s);

-- name: build_index
SELECT vk.build_index_v1(%(collection_id)s, %(model_id)s);

-- name: index_build_settings
-- At least the job's figures: a larger maintenance_work_mem set for the role or the server stays.
SELECT set_config('maintenance_work_mem',
                  CASE WHEN pg_size_bytes(current_setting('maintenance_work_mem')) >= pg_size_bytes(%(maintenance_work_mem)s)
                       THEN current_setting('maintenance_work_mem') ELSE %(maintenance_work_mem)s END, false),
       set_config('max_parallel_maintenance_workers',
                  greatest(current_setting('max_parallel_maintenance_workers')::integer, %(parallel_workers)s::integer)::text,
                  false);

-- name: collection_name
SELECT name, default_model_id FROM vk.collection_v1(%(id)s) WHERE id IS NOT NULL;

-- name: keep_newest
SELECT vk.keep_newest_v1(%(collection_id)s, %(name)s, %(keep)s);

-- == Recovery, maps and next-vector jobs (workers/jobs/recover.py, workers/recovery.py, workers/map_coordinates.py, workers/map_gaps.py, workers/jobs/predict.py)

-- name: adopted_id
SELECT id FROM vk.adopted_v1(%(name)s) WHERE id IS NOT NULL;

-- name: recover_nearest_page
SELECT last_key, recovered FROM vk.recover_nearest_page_v1(%(adopted_id)s, %(after)s, %(page)s,
                                                            %(reference_model_id)s, %(job_id)s);

-- name: recovered_summary
SELECT recovered, mean_similarity, without_text FROM vk.recovered_summary_v1(%(adopted_id)s, %(method)s);

-- name: adopted_page
SELECT pk, embedding FROM vk.adopted_page_v1(%(adopted_id)s, %(after)s, %(page)s);

-- name: put_recovered
SELECT vk.put_recovered_v2(%(adopted_id)s, %(pk)s, %(method)s, %(body)s, %(similarity)s, %(model_id)s,
                           %(reference_model_id)s, %(source_collection)s, %(source_pk)s, %(job_id)s, %(details)s);

-- name: recover_nearest
SELECT collection, pk, body, similarity FROM vk.recover(%(query)s, %(model)s, %(k)s, %(collection)s);

-- name: inverters_for
-- The ready inverters trained for an encoder version, best recorded held-out cosine first.
SELECT vk.inverters_v1(%(model_id)s);

-- name: maps_of
-- The maps drawn from a collection's vectors of a model version, still in use.
SELECT vk.maps_of_v1(%(collection_id)s, %(model_id)s);

-- name: add_map
SELECT vk.add_map_v1(%(model_id)s, %(collection_id)s, %(source_model_id)s);

-- name: upsert_coordinates
SELECT vk.put_coordinates_v1(%(collection_id)s, %(pk)s, %(model_id)s, %(x)s, %(y)s, %(text_sha256)s);

-- name: map_coordinates
SELECT pk, x, y FROM vk.coordinates WHERE model_id = %(model_id)s ORDER BY pk;

-- name: sequence_windows
SELECT group_key, target_pk, context_vectors, target
FROM vk.sequence_windows_v1(%(collection_id)s, %(model_id)s, %(context)s);

-- name: group_tail
SELECT pk, v FROM vk.group_tail_v1(%(collection_id)s, %(model_id)s, %(group_key)s, %(n)s);

-- name: put_prediction
SELECT vk.put_prediction_v1(%(job_id)s, %(collection_id)s, %(model_id)s, %(group_key)s, %(context_pks)s, %(vector)s);

-- name: put_prediction_text
SELECT vk.put_prediction_text_v1(%(job_id)s, %(recovered)s);

-- == The application layer: what the command line and programs call (vectorkeep/app/)

-- name: list_models
SELECT vk.model_label(m) AS model, m.kind, m.dim, m.distance, m.status,
       m.fingerprint IS NOT NULL AS fingerprinted, m.params, m.created_at
FROM vk.models m ORDER BY m.name, m.version;

-- name: set_storage
SELECT vk.set_storage(%(model)s, %(storage)s);

-- name: attach
SELECT name FROM vk.attach(%(table)s::regclass, %(pk)s, %(text)s, %(model)s, %(name)s, %(row_security)s,
                           %(metadata)s);

-- name: set_chunking
SELECT name, chunking FROM vk.set_chunking(%(collection)s, %(method)s, %(size)s, %(overlap)s);

-- name: search
-- query: a vector, or a text (encoded by a worker's text-query lane).
SELECT pk, body, distance FROM vk.search(%(collection)s, %(query)s, %(k)s, %(model)s, %(filter)s);

-- name: similar
SELECT pk, body, distance FROM vk.similar(%(collection)s, %(pk)s, %(k)s, %(model)s, %(filter)s);

-- name: search_chunks
SELECT pk, chunk, start_char, end_char, body, distance
FROM vk.search_chunks(%(collection)s, %(query)s, %(k)s, %(model)s, %(filter)s);

-- name: hybrid_search
SELECT pk, body, score, keyword_rank, vector_rank
FROM vk.hybrid_search(%(collection)s, %(query)s::text, %(k)s, %(filter)s, %(keyword_weight)s, %(vector_weight)s,
                      %(model)s, %(fusion)s);

-- name: text_query_lane_running
-- Whether a worker's text-query lane listens (workers/text_queries.py).
SELECT EXISTS (SELECT 1 FROM pg_stat_activity
               WHERE datname = current_database() AND application_name LIKE 'vectorkeep interactive %');

-- name: status
SELECT collection, model, is_default, rows, embedded, chunks, chunking, pending, failed, dead, empty, stale,
       last_embedded_at, error
FROM vk.status ORDER BY collection, model;

-- name: pending
-- Queue rows still to do (not dead), for progress bars.
SELECT count(*) FROM vk.queue WHERE NOT dead;

-- name: corpus_loaded
SELECT EXISTS (SELECT 1 FROM vk.documents WHERE metadata ->> 'source' = %(source)s);

-- name: insert_document
INSERT INTO vk.documents (body, metadata) VALUES (%(body)s, %(metadata)s);

-- name: activate
SELECT activated FROM vk.activate(%(collection)s, %(model)s, %(gates)s);

-- name: retire
SELECT vk.retire(%(model)s, %(collection)s, confirm => %(confirm)s);

-- name: list_jobs
SELECT j.id, j.kind, j.status, c.name AS collection, vk.model_label(m) AS model, j.attempts,
       j.progress, j.metrics, j.error, j.worker, j.created_at, j.started_at, j.finished_at
FROM vk.jobs j
LEFT JOIN vk.collections c ON c.id = j.collection_id
LEFT JOIN vk.models m ON m.id = j.model_id
ORDER BY j.id DESC LIMIT %(limit)s;

-- name: job
-- One job with its collection and model names, what an encoder behind an API used for it (NULL: none),
-- how long it waited in the queue and how long it ran (so far, while it waits or runs).
-- (Labels spelt out: on Citus the subquery on vk.api_usage, a table of the coordinator, sends the rest to a
-- node, where a row of vk.models has the shard's row type and vk.model_label(vk.models) does not resolve.)
SELECT j.*, c.name AS collection, m.name || '@' || m.version AS model,
       (SELECT jsonb_build_object('requests', u.requests, 'inputs', u.inputs, 'tokens', u.tokens,
                                  'retries', u.retries, 'throttled_seconds', u.throttled_seconds,
                                  'failures', u.failures)
        FROM vk.api_usage u WHERE u.job_id = j.id AND u.model_id = j.model_id) AS api_usage,
       extract(epoch FROM coalesce(j.started_at, j.finished_at, now()) - j.created_at)::float8 AS queued_seconds,
       extract(epoch FROM coalesce(j.finished_at, now()) - j.started_at)::float8 AS run_seconds
FROM vk.jobs j
LEFT JOIN vk.collections c ON c.id = j.collection_id
LEFT JOIN vk.models m ON m.id = j.model_id
WHERE j.id = %(id)s;

-- name: train
SELECT vk.train(%(model)s, %(kind)s, %(params)s, %(collection)s);

-- name: schedule_train
SELECT vk.schedule_train(%(model)s, %(kind)s, %(every)s::interval, %(params)s, %(collection)s);

-- name: unschedule
SELECT vk.unschedule(%(model)s, %(collection)s);

-- name: reembed
SELECT vk.reembed(%(collection)s, %(model)s);

-- name: cancel_job
SELECT id, status FROM vk.cancel_job(%(id)s);

-- name: jobs_for_export
-- Jobs as MLflow runs (vectorkeep.app.mlflow_export): every finished job when %(ids)s is NULL, else those
-- ids whatever their status (the caller refuses unfinished ones); with the collection, the model version
-- and, for the job that trained that version, the version's metrics; what an API encoder used for it.
SELECT j.id, j.kind, j.status, j.params, j.metrics, j.snapshot, j.log_tail, j.error, j.worker, j.attempts,
       j.created_at, j.started_at, j.finished_at,
       c.name AS collection, m.name || '@' || m.version AS model, m.kind AS model_kind,
       m.params ->> 'artifact_sha256' AS artifact_sha256,
       CASE WHEN m.trained_by_job = j.id THEN m.metrics END AS model_metrics,
       (SELECT jsonb_build_object('requests', u.requests, 'inputs', u.inputs, 'tokens', u.tokens,
                                  'retries', u.retries, 'throttled_seconds', u.throttled_seconds,
                                  'failures', u.failures)
        FROM vk.api_usage u WHERE u.job_id = j.id AND u.model_id = j.model_id) AS api_usage
FROM vk.jobs j
LEFT JOIN vk.collections c ON c.id = j.collection_id
LEFT JOIN vk.models m ON m.id = j.model_id
WHERE CASE WHEN %(ids)s::bigint[] IS NULL THEN j.status IN ('succeeded', 'failed', 'cancelled')
           ELSE j.id = ANY (%(ids)s::bigint[]) END
ORDER BY j.id;

-- name: adopt
SELECT name, model FROM vk.adopt(%(table)s::regclass, %(pk)s, %(vector)s, %(model)s, %(name)s);

-- name: set_encoder
-- The adopted vectors' encoder, named by the user and loaded here: its
-- fingerprint lets versions in the same space be found.
SELECT vk.set_encoder_v1(%(model)s, %(encoder)s, %(fingerprint)s);

-- name: recover_adopted
SELECT vk.recover_adopted(%(adopted)s, %(method)s, %(reference)s, %(params)s);

-- name: recovered_text
SELECT pk, body, method, model, similarity, alternatives FROM vk.recovered_text(%(adopted)s);

-- name: evaluate_recovery
SELECT vk.evaluate_recovery(%(collection)s, %(model)s, %(inverter)s, %(params)s);

-- name: map_gaps
SELECT cell_x, cell_y, x, y, neighbours FROM vk.map_gaps(%(model)s, %(cells)s, %(min_neighbours)s);

-- name: set_order
SELECT name FROM vk.set_order(%(collection)s, %(group)s, %(position)s);

-- name: predict_next
SELECT vk.predict_next(%(collection)s, %(group_key)s, %(model)s);

-- name: predicted
SELECT pk, body, similarity FROM vk.predicted(%(job_id)s, %(k)s);

-- Catalogue reads (db/catalogue.py, vectorkeep schema check). Run with
-- search_path = pg_catalog, <pgvector's schema>, so names print the same in
-- every session.

-- == The schema: catalogue, definitions, worker contract, health probes, preflight, Citus (db/)

-- name: search_path
SELECT current_setting('search_path');

-- name: set_search_path
SELECT set_config('search_path', %(path)s, false);

-- name: function_bodies_checked
SELECT current_setting('check_function_bodies');

-- name: check_function_bodies
-- Off while a release's functions are restored: they are created in the order of their
-- first creation, and a SQL function's body may call one restored after it.
SELECT set_config('check_function_bodies', %(value)s, true);

-- name: existing_roles
SELECT rolname FROM pg_roles WHERE rolname = ANY(%(names)s);

-- name: has_worker_contract
-- Schemas before revision 0009 have no contract version.
SELECT to_regprocedure('vk.worker_contract()') IS NOT NULL;

-- name: worker_contract
SELECT vk.worker_contract();

-- name: vector_schema
SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';

-- name: catalogue
-- Every object of schema vk (and the grants of schema vk_expr) as (key, properties). Grants leave out the
-- owner's own; a collection's generated INSERT trigger function and HNSW
-- indexes are data, not schema.
WITH fn AS (
    SELECT p.* FROM pg_proc p
    WHERE p.pronamespace = 'vk'::regnamespace AND p.proname !~ '^_?on_insert_c[0-9]+$'
), rel AS (
    SELECT c.* FROM pg_class c
    WHERE c.relnamespace = 'vk'::regnamespace AND c.relname !~ '^embeddings_c[0-9]+_m[0-9]+_hnsw$'
)
SELECT 'function ' || p.oid::regprocedure::text,
       jsonb_build_object(
           'definition', pg_get_functiondef(p.oid),
           'arguments', pg_get_function_arguments(p.oid),
           'result', pg_get_function_result(p.oid),
           'security', CASE WHEN p.prosecdef THEN 'definer' ELSE 'invoker' END,
           'search_path', (SELECT substr(s, 13) FROM unnest(p.proconfig) s WHERE s LIKE 'search_path=%'),
           'volatility', CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END,
           'comment', obj_description(p.oid, 'pg_proc'),
           'grants', (SELECT coalesce(jsonb_agg(g ORDER BY g), '[]') FROM (
                          SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END
                                          || ':' || a.privilege_type AS g
                          FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                          WHERE a.grantee <> p.proowner) x))
FROM fn p
UNION ALL
SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'S' THEN 'sequence ' WHEN 'i' THEN 'index ' ELSE 'table ' END
           || c.oid::regclass::text,
       jsonb_strip_nulls(jsonb_build_object(
           'definition', CASE c.relkind
                             WHEN 'v' THEN 'CREATE OR REPLACE VIEW ' || c.oid::regclass::text || E' AS\n'
                                           || pg_get_viewdef(c.oid)
                             WHEN 'i' THEN pg_get_indexdef(c.oid) END,
           'columns', CASE WHEN c.relkind IN ('r', 'p') THEN (
                          SELECT jsonb_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                           || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                                           || CASE WHEN a.attidentity <> '' THEN ' IDENTITY' ELSE '' END
                                           || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
                                           ORDER BY a.attnum)
                          FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) END,
           'constraints', CASE WHEN c.relkind IN ('r', 'p') THEN (
                              SELECT coalesce(jsonb_agg(k.conname || ' ' || pg_get_constraintdef(k.oid)
                                                        ORDER BY k.conname), '[]')
                              FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype <> 'n') END,
           'comment', obj_description(c.oid, 'pg_class'),
           'row_security', nullif(c.relrowsecurity, false),
           'column_comments', (SELECT jsonb_object_agg(a.attname, col_description(c.oid, a.attnum))
                               FROM pg_attribute a
                               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                 AND col_description(c.oid, a.attnum) IS NOT NULL),
           'grants', CASE WHEN c.relkind <> 'i' THEN (
                         SELECT coalesce(jsonb_agg(g ORDER BY g), '[]') FROM (
                             SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END
                                             || ':' || a.privilege_type AS g
                             FROM aclexplode(coalesce(c.relacl, acldefault(
                                 CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
                             WHERE a.grantee <> c.relowner
                             UNION
                             SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END
                                    || ':' || a.privilege_type || ' (' || att.attname || ')'
                             FROM pg_attribute att, aclexplode(att.attacl) a
                             WHERE att.attrelid = c.oid AND att.attacl IS NOT NULL AND a.grantee <> c.relowner) x) END))
FROM rel c WHERE c.relkind IN ('r', 'p', 'v', 'S', 'i')
UNION ALL
SELECT 'trigger ' || t.tgname || ' ON ' || t.tgrelid::regclass::text,
       jsonb_build_object('definition', replace(pg_get_triggerdef(t.oid), 'CREATE TRIGGER', 'CREATE OR REPLACE TRIGGER'))
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'vk'::regnamespace AND NOT t.tgisinternal
  -- vk.attach's own triggers (vk.documents is an attached table) are data too.
  AND t.tgname NOT IN ('vk_queue_insert', 'vk_queue_update', 'vk_forget_delete', 'vk_forget_truncate')
UNION ALL
SELECT 'schema ' || n.nspname,
       jsonb_build_object(
           'comment', obj_description(n.oid, 'pg_namespace'),
           'grants', (SELECT coalesce(jsonb_agg(g ORDER BY g), '[]') FROM (
                          SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END
                                          || ':' || a.privilege_type AS g
                          FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                          WHERE a.grantee <> n.nspowner) x))
FROM pg_namespace n WHERE n.nspname IN ('vk', 'vk_expr')
UNION ALL
SELECT 'policy ' || p.policyname || ' ON ' || p.schemaname || '.' || p.tablename,
       jsonb_build_object('definition', format('CREATE POLICY %I ON %I.%I AS %s FOR %s TO %s', p.policyname,
                                               p.schemaname, p.tablename, p.permissive, p.cmd,
                                               array_to_string(p.roles, ', '))
                                        || coalesce(' USING (' || p.qual || ')', '')
                                        || coalesce(' WITH CHECK (' || p.with_check || ')', ''))
FROM pg_policies p WHERE p.schemaname = 'vk';

-- name: catalogue_function_dependencies
-- (function, a vk function its SQL-standard body needs) pairs; needs is NULL when none.
SELECT 'function ' || p.oid::regprocedure::text,
       (SELECT 'function ' || r.oid::regprocedure::text FROM pg_proc r
        WHERE r.oid = d.refobjid AND r.pronamespace = 'vk'::regnamespace AND r.oid <> p.oid)
FROM pg_proc p
LEFT JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_proc'::regclass
WHERE p.pronamespace = 'vk'::regnamespace AND p.proname !~ '^_?on_insert_c[0-9]+$';

-- name: has_collection_catalogue
-- Schemas before revision 0014 cannot say which indexes a collection's versions should have (vk._index_builds).
SELECT to_regprocedure('vk._index_builds(vk.collections,vk.models,boolean)') IS NOT NULL;

-- name: catalogue_collection_objects
-- What each collection brought with it, as (key, properties), keyed as the catalogue query keys them: the
-- indexes of its versions, its INSERT trigger function, its expression functions (every function of
-- schema vk_expr, so that a stray one shows) and the triggers on its table (any trigger running one of
-- vk's queue trigger functions, or named as one).
SELECT 'index ' || c.oid::regclass::text,
       jsonb_build_object('table', i.indrelid::regclass::text, 'method', a.amname,
                          'valid', i.indisvalid AND i.indisready)
FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_am a ON a.oid = c.relam
WHERE c.relnamespace = 'vk'::regnamespace AND c.relname ~ '^embeddings_c[0-9]+_m[0-9]+_(hnsw|fts)$'
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text,
       jsonb_build_object('security', CASE WHEN p.prosecdef THEN 'definer' ELSE 'invoker' END,
                          'search_path', (SELECT substr(s, 13) FROM unnest(p.proconfig) s WHERE s LIKE 'search_path=%'))
FROM pg_proc p
WHERE p.pronamespace = 'vk'::regnamespace AND p.proname ~ '^_?on_insert_c[0-9]+$'
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text,
       jsonb_build_object('owner', p.proowner::regrole::text,
                          'security', CASE WHEN p.prosecdef THEN 'definer' ELSE 'invoker' END,
                          'grants', (SELECT coalesce(jsonb_agg(g ORDER BY g), '[]') FROM (
                                         SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                                              ELSE a.grantee::regrole::text END
                                                         || ':' || a.privilege_type AS g
                                         FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                                         WHERE a.grantee <> p.proowner) x))
FROM pg_proc p
WHERE p.pronamespace = 'vk_expr'::regnamespace
UNION ALL
SELECT 'trigger ' || t.tgname || ' ON ' || t.tgrelid::regclass::text,
       jsonb_build_object('executes', substring(pg_get_triggerdef(t.oid) FROM 'EXECUTE FUNCTION (.*)$'),
                          'enabled', t.tgenabled IN ('O', 'A'))
FROM pg_trigger t
WHERE NOT t.tgisinternal
  AND (t.tgname IN ('vk_queue_insert', 'vk_queue_update', 'vk_forget_delete', 'vk_forget_truncate')
       OR t.tgfoid IN (SELECT p.oid FROM pg_proc p WHERE p.pronamespace = 'vk'::regnamespace
                                                     AND p.proname ~ '^_?on_(insert_c[0-9]+|update|delete|truncate)$'));

-- name: catalogue_collection_objects_expected
-- What each collection should have brought with it, as vk.collections and vk.collection_models say (and
-- vk._index_builds, the statements a version's indexes are built with): (key, properties, settled), as
-- catalogue_collection_objects reads them. settled is false for an index that a queued or running
-- reembed job is still to build (a backfill defers them) or that a session is building now: absent or
-- invalid, it is no drift then. An expression function is its author's, who alone (and vk's owner, to
-- evaluate it) may call it; a queue trigger runs vk's function with the collection's id.
WITH vk_owner AS (
    SELECT pg_get_userbyid(n.nspowner) AS name FROM pg_namespace n WHERE n.nspname = 'vk'
), pair AS (
    -- By id: with whole-row references to joined rows, PostgreSQL 18 fails to plan the inlined
    -- vk._index_builds ("variable not found in subplan target list").
    SELECT cm.collection_id, cm.model_id,
           EXISTS (SELECT 1 FROM vk.jobs j
                   WHERE j.kind = 'reembed' AND j.status IN ('queued', 'running')
                     AND j.collection_id = cm.collection_id AND j.model_id = cm.model_id) AS deferred
    FROM vk.collection_models cm
), expression AS (
    SELECT f.signature, f.author
    FROM vk.collections c
    CROSS JOIN LATERAL (VALUES (format('text_c%s(text[])', c.id), c.registered_by),
                               (format('texts_c%s(text,integer)', c.id), c.registered_by),
                               (format('meta_c%s(text[])', c.id), c.metadata_registered_by),
                               (format('order_c%s()', c.id), c.order_registered_by)) f(signature, author)
    WHERE f.signature LIKE 'text%'
       OR f.signature LIKE 'meta%' AND c.metadata_expression IS NOT NULL
       OR f.signature LIKE 'order%' AND c.group_expression IS NOT NULL
)
SELECT 'index vk.' || quote_ident(b.index_name),
       jsonb_build_object('table', 'vk.embeddings', 'method', substring(b.statement FROM 'USING (\w+)'), 'valid', true),
       NOT (p.deferred OR b.in_progress)
FROM pair p
CROSS JOIN LATERAL vk._index_builds(vk.collection_v1(p.collection_id), vk.model_v1(p.model_id), false) b
UNION ALL
SELECT 'function ' || vk._insert_trigger_name(c.id) || '()',
       jsonb_build_object('security', 'definer', 'search_path', 'pg_catalog, pg_temp'), true
FROM vk.collections c
UNION ALL
SELECT 'function vk_expr.' || e.signature,
       jsonb_build_object('owner', quote_ident(e.author), 'security', 'definer',
                          'grants', CASE WHEN e.author = o.name THEN '[]'::jsonb
                                         ELSE jsonb_build_array(quote_ident(o.name) || ':EXECUTE') END),
       true
FROM expression e CROSS JOIN vk_owner o
UNION ALL
SELECT 'trigger ' || t.name || ' ON ' || c.source::text,
       jsonb_build_object('executes', t.executes, 'enabled', true), true
FROM vk.collections c
CROSS JOIN LATERAL (VALUES ('vk_queue_insert', vk._insert_trigger_name(c.id) || '()'),
                           ('vk_queue_update', format('vk._on_update(%L)', c.id)),
                           ('vk_forget_delete', format('vk._on_delete(%L)', c.id)),
                           ('vk_forget_truncate', format('vk._on_truncate(%L)', c.id))) t(name, executes);

-- name: set_statement_timeout
-- A probe's statements give up after this many milliseconds (as text) rather than hang a health check or a scrape.
SELECT set_config('statement_timeout', %(ms)s, false);

-- name: queue_state
-- Per collection and model version: rows queued, dead, and the ages of the oldest queued and oldest
-- ready rows; read by `vectorkeep health` and by workers' metrics at scrape time (db/probes.py).
SELECT collection, model, queued, dead, oldest_seconds, oldest_ready_seconds FROM vk.queue_state_v1();

-- name: queue_workers
-- Workers whose main loop serves this database's queue now: sessions named as workers/worker.py names them
-- ('vectorkeep worker <host>-<pid>'; one or two connections a worker, by one name). Every role may read the
-- application_name of every session; read by `vectorkeep health` (db/probes.py).
SELECT count(DISTINCT application_name) FROM pg_stat_activity
WHERE datname = current_database() AND application_name LIKE 'vectorkeep worker %';

-- name: running_jobs
-- Running jobs and the progress they last saved, for workers' metrics at scrape time (db/probes.py).
SELECT id, kind, phase, done, total FROM vk.running_jobs_v1();

-- name: has_alembic_version
-- Whether alembic has recorded a revision here (vectorkeep was migrated into this database).
SELECT to_regclass('alembic_version') IS NOT NULL;

-- name: alembic_revision
SELECT version_num FROM alembic_version;

-- Preflight (`vectorkeep migrate --check`, `vectorkeep doctor`, and `vectorkeep migrate` before it changes
-- anything: db/preflight.py): what a migration needs of the server and of the role that runs it. Reads only.

-- name: preflight_role
-- The server, and the migrating role's attributes in this database. "Owns the database" is membership in its
-- owner, as revision 0015 decides whether it may ALTER DATABASE; default_schema is where CREATE EXTENSION and
-- alembic put what they create unqualified. unix_socket_directories is hidden from roles without
-- pg_read_all_settings (pg_settings then has no row for it); only a superuser's loopback uses it.
SELECT current_setting('server_version') AS server_version,
       current_setting('server_version_num')::integer AS server_version_num,
       current_user AS role_name, current_database() AS database, pg_get_userbyid(d.datdba) AS database_owner,
       r.rolsuper AS superuser, r.rolcreaterole AS createrole,
       pg_has_role(d.datdba, 'MEMBER') AS owns_database,
       has_database_privilege(d.oid, 'CREATE') AS create_on_database,
       current_schema() AS default_schema,
       coalesce(has_schema_privilege(current_schema(), 'CREATE'), false) AS create_on_default_schema,
       current_setting('client_connection_check_interval', true) AS connection_check_interval
FROM pg_roles r, pg_database d
WHERE r.rolname = current_user AND d.datname = current_database();

-- name: preflight_extension
-- One extension: the version installed and its schema (NULL when it is not installed), whether this role may use
-- that schema, and the version CREATE EXTENSION would install (NULL: not on this server) and whether a role
-- that is no superuser may install it (trusted, given CREATE on the database).
SELECT e.extversion AS installed, n.nspname AS schema, coalesce(has_schema_privilege(n.oid, 'USAGE'), false) AS usable,
       a.default_version AS available, coalesce(v.trusted, false) AS trusted
FROM (SELECT %(name)s::name AS name) x
LEFT JOIN pg_extension e ON e.extname = x.name
LEFT JOIN pg_namespace n ON n.oid = e.extnamespace
LEFT JOIN pg_available_extensions a ON a.name = x.name
LEFT JOIN pg_available_extension_versions v ON v.name = x.name AND v.version = a.default_version;

-- name: preflight_schemas
-- Schemas by name, in the order given: whether each exists, its owner, and whether this role acts as that owner.
SELECT s.name, n.oid IS NOT NULL AS present, pg_get_userbyid(n.nspowner) AS owner,
       coalesce(pg_has_role(n.nspowner, 'MEMBER'), false) AS owned
FROM unnest(%(names)s::name[]) WITH ORDINALITY s(name, i)
LEFT JOIN pg_namespace n ON n.nspname = s.name
ORDER BY s.i;

-- name: preflight_group_roles
-- vectorkeep's group roles (revision 0005): whether each exists, and whether this role holds ADMIN OPTION on it,
-- which PostgreSQL 16 and later ask of a role that is no superuser to make other roles members (on 15,
-- CREATEROLE is enough: db/preflight.py decides).
SELECT g.name, r.oid IS NOT NULL AS present,
       coalesce(pg_has_role(r.oid, 'MEMBER WITH ADMIN OPTION'), false) AS admin_option
FROM unnest(ARRAY['vk_app', 'vk_worker', 'vk_admin']::name[]) WITH ORDINALITY g(name, i)
LEFT JOIN pg_roles r ON r.rolname = g.name
ORDER BY g.i;

-- name: preflight_schema_creators
-- Who, besides vk's owner (this role, before vk exists) and superusers, may create objects in a schema: PUBLIC,
-- or login roles. Every upgrade refuses a pgvector schema that any of them may create in
-- (sql/definitions/00_schema_safety.sql, the same rule).
SELECT 'PUBLIC' AS creator FROM pg_namespace n, aclexplode(n.nspacl) a
WHERE n.nspname = %(schema)s AND a.grantee = 0 AND a.privilege_type = 'CREATE'
UNION ALL
SELECT r.rolname::text FROM pg_roles r, pg_namespace n
WHERE n.nspname = %(schema)s AND r.rolcanlogin AND NOT r.rolsuper
  AND has_schema_privilege(r.oid, n.oid, 'CREATE')
  AND NOT pg_has_role(r.oid, coalesce((SELECT v.nspowner FROM pg_namespace v WHERE v.nspname = 'vk'),
                                      (SELECT u.oid FROM pg_roles u WHERE u.rolname = current_user)), 'MEMBER');

-- name: preflight_loopback
-- How text queries would connect back to this database (vk._embed_link, as vk's owner: this role before vk
-- exists): the vk_loopback server, whether the owner may use it and has a user mapping there (its own, else
-- PUBLIC's) with a password (options are shown to the mapped role when it may use the server); whether this role
-- may create such a server (USAGE on dblink_fdw); the address this session reached the server at (NULL over a
-- Unix socket); and the conninfo a superuser's loopback uses when there is no vk_loopback (NULL where this role
-- may not read the socket's folder).
WITH owner AS (
    SELECT coalesce((SELECT pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE n.nspname = 'vk'), current_user)
           AS name
)
SELECT o.name AS owner, s.oid IS NOT NULL AS server_present,
       coalesce(has_server_privilege(o.name, s.oid, 'USAGE'), false) AS server_usage,
       m.usename IS NOT NULL AS mapping_present, m.umoptions IS NOT NULL AS options_visible,
       coalesce((SELECT bool_or(x LIKE 'password=%%') FROM unnest(m.umoptions) x), false) AS mapping_has_password,
       coalesce(has_foreign_data_wrapper_privilege(w.oid, 'USAGE'), false) AS may_create_server,
       host(inet_server_addr()) AS server_address, current_setting('port') AS port,
       (SELECT format('host=%%s port=%%s dbname=%%s user=%%s application_name=%%s',
                      split_part(p.setting, ',', 1), current_setting('port'), quote_literal(current_database()),
                      quote_literal(current_user), quote_literal(%(application_name)s::text))
        FROM pg_settings p WHERE p.name = 'unix_socket_directories' AND p.setting <> '') AS socket_conninfo
FROM owner o
LEFT JOIN pg_foreign_server s ON s.srvname = 'vk_loopback'
LEFT JOIN pg_foreign_data_wrapper w ON w.fdwname = 'dblink_fdw'
LEFT JOIN LATERAL (SELECT um.usename, um.umoptions FROM pg_user_mappings um
                   WHERE um.srvid = s.oid AND um.usename IN (o.name, 'public')
                   ORDER BY um.usename = 'public' LIMIT 1) m ON true;

-- name: preflight_try_loopback
-- Connect back to this database through dblink and run SELECT 1, as text queries do (vk._embed_link); target is
-- vk_loopback or a superuser's conninfo, and the connection closes when the statement ends. ts_stat is no text
-- search here: it runs a statement given as text (query_to_xml would need a server built with libxml), and the
-- statement is built in SQL because only the server knows dblink's schema.
SELECT count(*)
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace,
     LATERAL ts_stat(format('SELECT to_tsvector(''simple'', one::text) FROM %%I.dblink(%%L, ''SELECT 1'') AS t(one integer)',
                            n.nspname, %(target)s::text))
WHERE e.extname = 'dblink';

-- name: citus_roles_on_every_node
-- Before migrations on a Citus coordinator: vk's group roles on every worker
-- node too. Citus creates a role on the workers only when it is created in a
-- database with the citus extension; roles made earlier from a plain
-- database (another vk install on this server) exist on the coordinator
-- alone, and the first GRANT to them on a distributed object fails on a
-- worker ("role vk_app does not exist"). Nothing to do elsewhere.
DO $$
DECLARE
    r    text;
    node record;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_node') IS NULL THEN
        RETURN;
    END IF;
    FOR r IN SELECT rolname FROM pg_roles WHERE rolname IN ('vk_app', 'vk_worker', 'vk_admin') LOOP
        -- On that node only: propagated from there, it would meet this transaction.
        FOR node IN SELECT * FROM run_command_on_workers(format(
            'DO $r$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %L) THEN '
            'SET LOCAL citus.enable_create_role_propagation = off; CREATE ROLE %I NOLOGIN; END IF; END $r$', r, r)) LOOP
            IF NOT node.success THEN
                RAISE EXCEPTION 'vectorkeep: role % is missing on the Citus worker node %:% and could not be created there: %',
                    r, node.nodename, node.nodeport, node.result
                    USING HINT = format('Have an administrator run CREATE ROLE %I NOLOGIN on that node, then migrate again.', r);
            END IF;
        END LOOP;
    END LOOP;
END
$$;

-- name: distribute
-- vk over Citus (sql/definitions/90_citus.sql): each table and how it is placed.
SELECT table_name::text AS table_name, citus_table_type, distribution_column, shard_count
FROM vk.distribute(%(shards)s, %(embeddings_by)s);
