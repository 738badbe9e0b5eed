-- Reading follows the source table: vk's copies of a collection's text
-- (vectors with their text and chunks, map coordinates, predictions) are
-- visible to a role only if it may SELECT the collection's
-- table; text recovered for an adopted table, only if it may SELECT that
-- table. Workers and operators see every row: they embed and manage them.
-- The schema owner bypasses these policies (its functions check for callers).
--
-- Current definitions: every upgrade re-applies this file.

CREATE OR REPLACE FUNCTION vk._may_read(c_id bigint) RETURNS boolean
LANGUAGE sql STABLE
RETURN coalesce((SELECT has_table_privilege(c.source, 'SELECT') FROM vk.collections c WHERE c.id = c_id), false);
COMMENT ON FUNCTION vk._may_read(bigint) IS 'Internal: whether the caller may SELECT a collection''s source table.';

CREATE OR REPLACE FUNCTION vk._may_read_adopted(a_id bigint) RETURNS boolean
LANGUAGE sql STABLE
RETURN coalesce((SELECT has_table_privilege(a.source, 'SELECT') FROM vk.adopted a WHERE a.id = a_id), false);
COMMENT ON FUNCTION vk._may_read_adopted(bigint) IS 'Internal: whether the caller may SELECT an adopted table.';

DO $$
DECLARE
    t text;
BEGIN
    -- Not vk.queue, which every INSERT of an attached table writes: applications
    -- may not read it at all (99_privileges.sql), and it stays off this path.
    FOREACH t IN ARRAY ARRAY['embeddings', 'coordinates', 'predictions', 'recovered'] LOOP
        EXECUTE format('ALTER TABLE vk.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS operators ON vk.%I', t);
        EXECUTE format('CREATE POLICY operators ON vk.%I TO vk_worker, vk_admin USING (true) WITH CHECK (true)', t);
        EXECUTE format('DROP POLICY IF EXISTS readers ON vk.%I', t);
        EXECUTE format('CREATE POLICY readers ON vk.%I FOR SELECT USING (%s)', t,
                       CASE t WHEN 'recovered' THEN 'vk._may_read_adopted(adopted_id)'
                              ELSE 'vk._may_read(collection_id)' END);
    END LOOP;
END
$$;
