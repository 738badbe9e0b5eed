-- Who may do what. Functions that must write or read what their caller may
-- not (the queue triggers, the worker's reads of source tables, index
-- builds) run as their owner (SECURITY DEFINER) with a fixed search_path
-- (pg_catalog, pgvector's schema, then pg_temp), so no caller's objects can
-- stand in for the ones they use.
-- idempotent: grants, revokes and ALTER FUNCTION only.

REVOKE ALL ON ALL TABLES IN SCHEMA vk FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA vk FROM PUBLIC;
GRANT USAGE ON SCHEMA vk TO vk_app, vk_worker, vk_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA vk TO vk_app, vk_worker, vk_admin;

-- Applications call the read API only (search, similar, recover, status and
-- what they call); the rest changes models, collections or jobs.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA vk FROM vk_app;
GRANT EXECUTE ON FUNCTION
    vk.search(text, vector, integer, text), vk.similar(text, text, integer, text),
    vk.recover(vector, text, integer, text), vk.collection(text), vk.collection_model(vk.collections, text),
    vk.model(text), vk.model_label(vk.models), vk.require_usable(vk.models), vk.check_dimension(vector, vk.models),
    vk.check_k(integer), vk.widen_ef_search(integer), vk.knn_sql(bigint, vk.models), vk.operator(text),
    vk.opclass(text), vk.similarity(double precision, text), vk.probe_text(), vk.collection_stats_v1(bigint, bigint)
TO vk_app;
-- Retiring and detaching delete vectors and indexes: operators only.
REVOKE EXECUTE ON FUNCTION vk.retire(text, text), vk.detach(text) FROM vk_worker;

-- Applications: read the API's tables, write vk.documents; nothing else.
GRANT SELECT ON ALL TABLES IN SCHEMA vk TO vk_app;
GRANT INSERT, UPDATE, DELETE ON vk.documents TO vk_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA vk TO vk_app;

-- Workers: the queue, vectors, jobs, artifacts, recovered text, model versions they train.
GRANT SELECT ON ALL TABLES IN SCHEMA vk TO vk_worker;
GRANT INSERT, UPDATE, DELETE ON vk.queue, vk.embeddings, vk.jobs, vk.model_artifacts, vk.recovered TO vk_worker;
GRANT INSERT, UPDATE ON vk.models, vk.schedules TO vk_worker;
GRANT UPDATE (default_model_id) ON vk.collections TO vk_worker;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA vk TO vk_worker;

-- Operators: everything.
GRANT ALL ON ALL TABLES IN SCHEMA vk TO vk_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA vk TO vk_admin;

DO $$
DECLARE
    f           regprocedure;
    -- pgvector's schema (its types and operators), wherever it was installed.
    pgvector_at name := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                         WHERE e.extname = 'vector');
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = 'vk'::regnamespace
               AND p.proname IN (
                   -- triggers on application tables: queue and forget as the owner
                   'on_insert_v1', 'on_update_v1', 'on_delete_v1', 'on_truncate_v1', 'forget_v1', 'enqueued_v1',
                   -- read source or legacy tables the caller need not see
                   'claim_v1', 'enqueue_page_v1', 'collection_texts_v1', 'snapshot_v1', 'coverage_v1',
                   'collection_stats_v1', 'recover_nearest_page_v1', 'adopted_page_v1',
                   -- build and drop the HNSW indexes (owner only)
                   'embed_with_v1', 'retire', 'detach') LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, %I, pg_temp', f, pgvector_at);
    END LOOP;
END
$$;
