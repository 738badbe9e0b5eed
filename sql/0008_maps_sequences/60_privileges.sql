-- Who may call the map and sequence functions (see 0005_roles/20_privileges.sql).
-- idempotent: grants, revokes and ALTER FUNCTION only.

REVOKE ALL ON FUNCTION
    vk.is_encoder_kind(text), vk.forget_coordinates_v1(), vk.map(text), vk.map_gaps(text, integer, integer),
    vk.set_order(text, text, text), vk.ordered(vk.collections), vk.sequence_windows_v1(bigint, bigint, integer),
    vk.group_tail_v1(bigint, bigint, text, integer), vk.next_vector_model(vk.collections, text),
    vk.predict_next(text, text, text), vk.predicted(bigint, integer)
FROM PUBLIC;
-- Applications read maps and predictions, and ask for predictions (a job, no model change).
GRANT EXECUTE ON FUNCTION
    vk.is_encoder_kind(text), vk.map(text), vk.map_gaps(text, integer, integer), vk.ordered(vk.collections),
    vk.next_vector_model(vk.collections, text), vk.predict_next(text, text, text), vk.predicted(bigint, integer)
TO vk_app;
GRANT EXECUTE ON FUNCTION
    vk.is_encoder_kind(text), vk.forget_coordinates_v1(), vk.map(text), vk.map_gaps(text, integer, integer),
    vk.set_order(text, text, text), vk.ordered(vk.collections), vk.sequence_windows_v1(bigint, bigint, integer),
    vk.group_tail_v1(bigint, bigint, text, integer), vk.next_vector_model(vk.collections, text),
    vk.predict_next(text, text, text), vk.predicted(bigint, integer)
TO vk_worker, vk_admin;

DO $$
DECLARE
    f           regprocedure;
    pgvector_at name := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                         WHERE e.extname = 'vector');
BEGIN
    -- They read source tables, or write vk.coordinates and the job table, for callers who may not.
    FOREACH f IN ARRAY ARRAY['vk.forget_coordinates_v1()', 'vk.sequence_windows_v1(bigint, bigint, integer)',
                             'vk.group_tail_v1(bigint, bigint, text, integer)', 'vk.set_order(text, text, text)',
                             'vk.predict_next(text, text, text)']::regprocedure[] LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, %I, pg_temp', f, pgvector_at);
    END LOOP;
END
$$;
