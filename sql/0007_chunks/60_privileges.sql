-- Who may call the chunking functions (see 0005_roles/20_privileges.sql).
-- idempotent: grants, revokes and ALTER FUNCTION only.

REVOKE ALL ON FUNCTION
    vk.set_chunking(text, text, integer, integer), vk.knn_chunks_sql(bigint, vk.models, text),
    vk.chunks_for_rows(integer), vk.knn_rows_sql(vk.collections, vk.models),
    vk.search_chunks(text, vector, integer, text), vk.collection_stats_v2(bigint, bigint)
FROM PUBLIC;
-- Applications: the read API.
GRANT EXECUTE ON FUNCTION
    vk.knn_chunks_sql(bigint, vk.models, text), vk.chunks_for_rows(integer), vk.knn_rows_sql(vk.collections, vk.models),
    vk.search_chunks(text, vector, integer, text), vk.collection_stats_v2(bigint, bigint)
TO vk_app, vk_worker, vk_admin;
-- Changing how rows are cut re-embeds a collection: workers and operators.
GRANT EXECUTE ON FUNCTION vk.set_chunking(text, text, integer, integer) TO vk_worker, vk_admin;

DO $$
DECLARE
    pgvector_at name := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                         WHERE e.extname = 'vector');
BEGIN
    -- They read source tables (and, for set_chunking, write the queue and
    -- vectors) that the caller need not see.
    EXECUTE format('ALTER FUNCTION vk.collection_stats_v2(bigint, bigint) '
                   'SECURITY DEFINER SET search_path = pg_catalog, %I, pg_temp', pgvector_at);
    EXECUTE format('ALTER FUNCTION vk.set_chunking(text, text, integer, integer) '
                   'SECURITY DEFINER SET search_path = pg_catalog, %I, pg_temp', pgvector_at);
END
$$;
