-- Who may do what. Every upgrade re-applies this file: it takes back every
-- grant on schema vk, then gives each role exactly what it needs, so a grant
-- removed here is removed from every database.
--
--   vk_app     applications: write their own tables and vk.documents; search,
--              similar, recover, read status, maps and predictions
--   vk_worker  workers and job runners: the worker contract (vk.*_v1) and the
--              operations a job performs (train, re-embed, activate)
--   vk_admin   operators: everything in schema vk
--
-- Functions that must read or write what their caller may not (the queue
-- triggers, the worker's reads of source tables, index builds) say SECURITY
-- DEFINER on their own CREATE, with a fixed search_path.

REVOKE ALL ON ALL TABLES IN SCHEMA vk FROM PUBLIC, vk_app, vk_worker, vk_admin;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA vk FROM PUBLIC, vk_app, vk_worker, vk_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA vk FROM PUBLIC, vk_app, vk_worker, vk_admin;
REVOKE ALL ON SCHEMA vk FROM PUBLIC, vk_app, vk_worker, vk_admin;
REVOKE ALL ON SCHEMA vk_expr FROM PUBLIC, vk_app, vk_worker, vk_admin;
GRANT USAGE ON SCHEMA vk TO vk_app, vk_worker, vk_admin;
-- The roles that may attach a table or set an order write their expression
-- functions there, as themselves (11_expressions.sql).
GRANT USAGE, CREATE ON SCHEMA vk_expr TO vk_worker, vk_admin;

-- Operators: everything.
GRANT ALL ON ALL TABLES IN SCHEMA vk TO vk_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA vk TO vk_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA vk TO vk_admin;

-- Applications: read the API's tables (row-level security keeps to the
-- collections whose tables they may read, 98_row_security.sql), write
-- vk.documents; never model artifacts or the queue.
GRANT SELECT ON ALL TABLES IN SCHEMA vk TO vk_app;
REVOKE SELECT ON vk.model_artifacts, vk.queue, vk.embed_requests, vk.embed_cache FROM vk_app;
GRANT INSERT, UPDATE, DELETE ON vk.documents TO vk_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA vk TO vk_app;

-- Workers: the queue, vectors, jobs, artifacts, recovered text, maps,
-- predictions and the model versions they train.
GRANT SELECT ON ALL TABLES IN SCHEMA vk TO vk_worker;
GRANT INSERT, UPDATE, DELETE ON vk.queue, vk.embeddings, vk.jobs, vk.model_artifacts, vk.recovered,
    vk.maps, vk.coordinates, vk.predictions TO vk_worker;
GRANT INSERT, UPDATE ON vk.models, vk.schedules, vk.api_usage TO vk_worker;
GRANT UPDATE (default_model_id) ON vk.collections TO vk_worker;
-- vk.activate of a map or next-vector model (a job's params.activate too) deploys it.
GRANT INSERT, UPDATE ON vk.deployments TO vk_worker;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA vk TO vk_worker;

-- The read API, for applications, workers and operators alike.
GRANT EXECUTE ON FUNCTION
    vk.search(text, vector, integer, text, jsonb), vk.search(text, text, integer, text, jsonb),
    vk.similar(text, text, integer, text, jsonb), vk.similar(text, anycompatible, integer, text, jsonb),
    vk.search_chunks(text, vector, integer, text, jsonb), vk.search_chunks(text, text, integer, text, jsonb),
    vk.hybrid_search(text, text, integer, jsonb, double precision, double precision, text, text),
    vk.embed(text, text), vk.recover(vector, text, integer, text),
    vk.map_gaps(text, integer, integer), vk.predict_next(text, text, text), vk.predicted(bigint, integer),
    vk.recovered_text(text),
    vk.model(text), vk.model_label(vk.models), vk.model_role(vk.models), vk.probe_text(), vk.collection_id(text),
    vk.row_vector(text, text, text), vk.row_vector(text, anycompatible, text),
    -- what those call
    vk._collection(text), vk._collection_model(vk.collections, text), vk._require_usable(vk.models),
    vk._usable_models_hint(), vk._row_vector(vk.collections, vk.models, text), vk._require_role(vk.models, text[], text),
    vk._check_dimension(vector, vk.models), vk._check_k(integer), vk._widen_ef_search(integer),
    vk._set_local(text, text), vk._on_shard(integer, text), vk._citus_table(regclass),
    vk._nearest(vk.collections, vk.models, vector, integer, jsonb, boolean),
    vk._explain_empty_filter(vk.collections, vk.models, jsonb),
    vk._nearest_sql(vk.collections, vk.models, boolean, boolean, boolean), vk._exact_bound(integer), vk._iterative_scans(),
    vk._chunks_for_rows(integer), vk._keyword_sql(vk.collections, vk.models), vk._any_word(regconfig, text),
    vk._keyword_bm25(vk.collections, vk.models, text, integer, jsonb), vk._bm25_weight(integer, integer, double precision),
    vk._bm25_idf(double precision, double precision), vk._hybrid_setting(bigint), vk._hybrid_defaults(),
    vk._check_hybrid(text, double precision, double precision),
    vk._keyword_index_name(bigint, bigint),
    vk._query_vector(vk.models, text), vk._embed_vector(bigint, text),
    vk._operator(text), vk._similarity(double precision, text),
    vk._status(), vk._collection_stats(bigint, bigint), vk._index_state(bigint, vk.models),
    vk._indexable(vk.models),
    vk._hnsw_index_name(bigint, bigint), vk._map(text), vk._ordered(vk.collections), vk._readable(vk.collections),
    vk._may_read(bigint), vk._may_read_adopted(bigint), vk._may_read_job(bigint, text, jsonb, bigint, bigint),
    vk._may_read_job_id(bigint),
    vk._may_use(vk.models, name), vk._may_use_trained(bigint, name), vk._kind_role(text),
    vk._require_may_use(vk.models),
    vk._next_vector_model(vk.collections, text)
TO vk_app, vk_worker;

-- Workers: the worker contract and what a job does.
GRANT EXECUTE ON FUNCTION
    vk.worker_contract(), vk.claim_v1(integer), vk.claim_live_v1(integer), vk.chunking_v1(bigint),
    vk.distributed_v1(), vk.collect_captured_v1(), vk.move_captured_v1(integer),
    vk._forget_coordinates_of(bigint, text[], bigint), vk._install_change_triggers(bigint), vk._one_connection_per_node(),
    vk.put_chunk_v1(bigint, text, bigint, integer, integer, integer, vector, text, bytea, boolean),
    vk._queued_metadata(bigint, text, bigint),
    vk.finish_row_v1(bigint, text, bigint, integer),
    vk.fail_row_v1(bigint, text, bigint, text, integer, double precision),
    vk.defer_row_v1(bigint, text, bigint, text, double precision),
    vk.record_api_usage_v1(bigint, bigint, bigint, bigint, bigint, bigint, double precision, bigint),
    vk.model_v1(bigint), vk.collection_model_v1(text, text), vk.record_fingerprint_v1(bigint, vector),
    vk.register_model_v1(text, text, integer, text, jsonb, vector),
    vk.embed_with_v1(vk.collections, vk.models), vk.backfill_v1(bigint, bigint), vk.index_plan_v1(bigint, bigint),
    vk.build_index_v1(bigint, bigint), vk.queue_state_v1(), vk.running_jobs_v1(),
    vk.submit_job_v1(text, jsonb, bigint, bigint, bigint), vk.claim_job_v1(text, double precision, text[]),
    vk.heartbeat_job_v1(bigint, text, double precision, jsonb), vk.finish_job_v1(bigint, text, jsonb, bigint, text),
    vk.fail_job_v1(bigint, text, text, text), vk.release_job_v1(bigint, text, jsonb), vk.run_due_schedules_v1(),
    vk.enqueue_page_v1(bigint, bigint, text, integer), vk.snapshot_v1(bigint), vk.collection_texts_v1(bigint),
    vk.collection_v1(bigint), vk.record_snapshot_v1(bigint, bigint), vk.queue_counts_v1(bigint, bigint),
    vk.reserve_model_v1(bigint, text, text, jsonb), vk.model_trained_v1(bigint, integer, jsonb, jsonb, vector),
    vk.model_failed_v1(bigint), vk.store_artifact_v1(bigint, text, bytea), vk.artifact_v1(bigint, text),
    vk.collection_pairs_v1(bigint, bigint), vk.row_vectors_v1(bigint, bigint, text[]),
    vk.recover_nearest_page_v1(bigint, text, integer, bigint, bigint), vk.adopted_page_v1(bigint, text, integer),
    vk.put_recovered_v1(bigint, text, text, double precision, bigint, bigint, bigint, jsonb),
    vk.put_recovered_v2(bigint, text, text, text, double precision, bigint, bigint, text, text, bigint, jsonb),
    vk.adopted_v1(text), vk.recovered_summary_v1(bigint, text), vk.inverters_v1(bigint),
    vk.set_encoder_v1(text, text, vector),
    vk.maps_of_v1(bigint, bigint), vk.add_map_v1(bigint, bigint, bigint),
    vk.put_coordinates_v1(bigint, text, bigint, double precision, double precision, bytea),
    vk.sequence_windows_v1(bigint, bigint, integer), vk.group_tail_v1(bigint, bigint, text, integer),
    vk.put_prediction_v1(bigint, bigint, bigint, text, text[], vector), vk.put_prediction_text_v1(bigint, jsonb),
    vk.keep_newest_v1(bigint, text, integer),
    vk.claim_embed_requests_v1(integer), vk.answer_embed_request_v1(bigint, vector),
    vk.fail_embed_request_v1(bigint, text), vk.prune_embed_cache_v1(), vk.search_models_v1(),
    vk.compact_keyword_stats_v1(),
    -- operations a job or a worker's command performs
    vk.set_text_search(text, regconfig), vk.add_model(text, text, boolean), vk.retry_dead(text),
    vk.train(text, text, jsonb, text), vk.reembed(text, text), vk.cancel_job(bigint),
    vk.schedule_train(text, text, interval, jsonb, text), vk.unschedule(text, text), vk.retire(text, text, boolean),
    vk.activate(text, text, jsonb), vk.set_chunking(text, text, integer, integer), vk.set_order(text, text, text),
    vk.recover_adopted(text, text, text, jsonb),
    vk.evaluate_recovery(text, text, text, jsonb),
    -- what those call
    vk.set_storage(text, text),
    vk._opclass(text, text), vk._hnsw_index_sql(bigint, vk.models, boolean),
    vk._keyword_index_sql(bigint, bigint, regconfig, boolean), vk._index_statements(vk.collections, vk.models, boolean), vk._embed_with(vk.collections, vk.models, boolean),
    vk._enqueued(bigint, bigint), vk._insert_trigger_name(bigint), vk._install_insert_trigger(bigint),
    vk._kind(text), vk._param_help(text, jsonb),
    vk._params_help(vk.model_kinds), vk._check_param(vk.model_kinds, text, jsonb, jsonb), vk._train_params(text, jsonb),
    vk._train_job(text, text, jsonb), vk._train_collection(text, text), vk._encoder_for(vk.collections, text, text[]), vk._require_key(regclass, text),
    vk._coverage(vk.collections, vk.models), vk._space_metrics(vk.collections, vk.models), vk._scalar_metrics(jsonb),
    vk._check_gates(vk.models, jsonb), vk._adopted(text), vk._compatible_models(vk.models),
    vk._inverter_for(vk.models, text, text), vk._inverter_method(text),
    vk._install_text_functions(bigint), vk._install_metadata_function(bigint), vk._refresh_metadata(bigint, text[]),
    vk._keyword_index_name(bigint, bigint), vk._install_order_function(bigint), vk._record_order(bigint, text, text, name),
    vk._expression_problem(regprocedure, regclass), vk._seal_expression_function(regprocedure, name),
    -- vk.attach creates triggers on these, which needs EXECUTE on them
    vk._on_update(), vk._on_delete(), vk._on_truncate(), vk._capture()
TO vk_worker;

-- On Citus, the settings the definitions above cannot carry (90_citus.sql);
-- nothing on one server.
SELECT vk._citus_settings();
