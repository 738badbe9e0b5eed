-- Reading follows the source table: vk's copies of a collection's text
-- (vectors with their text and chunks, map coordinates, predictions) are
-- visible to a role only if it may SELECT the collection's
-- table; text recovered for an adopted table, only if it may SELECT that
-- table; a job, only if it may read what the job read (below). Workers and
-- operators see every row: they embed and manage them.
-- The schema owner bypasses these policies (its functions check for callers).
--
-- Current definitions: every upgrade re-applies this file.

CREATE OR REPLACE FUNCTION vk._may_read(c_id bigint) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT has_table_privilege(c.source, 'SELECT') FROM vk.collections c WHERE c.id = c_id), false)
$$;
COMMENT ON FUNCTION vk._may_read(bigint) IS 'Internal: whether the caller may SELECT a collection''s source table.';

CREATE OR REPLACE FUNCTION vk._may_read_adopted(a_id bigint) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT has_table_privilege(a.source, 'SELECT') FROM vk.adopted a WHERE a.id = a_id), false)
$$;
COMMENT ON FUNCTION vk._may_read_adopted(bigint) IS 'Internal: whether the caller may SELECT an adopted table.';

-- A job records what it read: its snapshot (row count, largest key), its
-- progress (the last key), its log and error (which may quote a row), its
-- metrics (a prediction's text). So a role sees a job only if it may read the
-- table the job read (its collection's; a recover job's adopted table) and
-- may use each model version the job names (vk._may_use: a version trained
-- on a table it may not read). A job over neither (its collection detached)
-- is for operators only: nothing says any more what it read.
-- A train job's own version is judged by the job's collection alone: it was
-- trained there, and vk._may_use reads this very row to decide (through this
-- policy: judging the version again would never end).
-- vk.schedules needs no policy: a schedule holds only what an operator typed
-- (model name, kind and parameters, the collection, the interval).
CREATE OR REPLACE FUNCTION vk._may_read_job(
    job_id bigint, job_kind text, job_params jsonb, c_id bigint, m_id bigint
) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        CASE WHEN c_id IS NOT NULL THEN vk._may_read(c_id)
             WHEN job_kind = 'recover' THEN (SELECT vk._may_read_adopted(a.id) FROM vk.adopted a
                                             WHERE a.name = job_params ->> 'adopted')
             ELSE false END
        AND NOT EXISTS (
            SELECT 1 FROM vk.models m
            WHERE (m.id = m_id OR m.id::text IN (job_params ->> 'inverter_model_id', job_params ->> 'reference_model_id'))
              AND m.trained_by_job IS DISTINCT FROM job_id
              AND NOT vk._may_use_trained(m.trained_by_job, current_user)),
        false)
$$;
COMMENT ON FUNCTION vk._may_read_job(bigint, text, jsonb, bigint, bigint) IS
    'Internal: whether the caller may see a job (the row security of vk.jobs): it may read the job''s collection (a recover job: its adopted table) and use every model version the job names.';

DO $$
DECLARE
    t text;
BEGIN
    -- Not vk.queue, which every INSERT of an attached table writes: applications
    -- may not read it at all (99_privileges.sql), and it stays off this path.
    FOREACH t IN ARRAY ARRAY['embeddings', 'coordinates', 'predictions', 'recovered', 'jobs'] LOOP
        EXECUTE format('ALTER TABLE vk.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS operators ON vk.%I', t);
        EXECUTE format('CREATE POLICY operators ON vk.%I TO vk_worker, vk_admin USING (true) WITH CHECK (true)', t);
        EXECUTE format('DROP POLICY IF EXISTS readers ON vk.%I', t);
        EXECUTE format('CREATE POLICY readers ON vk.%I FOR SELECT USING (%s)', t,
                       CASE t WHEN 'recovered' THEN 'vk._may_read_adopted(adopted_id)'
                              WHEN 'jobs' THEN 'vk._may_read_job(id, kind, params, collection_id, model_id)'
                              ELSE 'vk._may_read(collection_id)' END);
    END LOOP;
END
$$;

-- BM25's words and counts are the collection's text in other form: the same
-- rule, written so that a search reading thousands of them checks the
-- caller's privileges once per query (a hashed subplan), not once per row.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['keyword_postings', 'keyword_stats'] LOOP
        EXECUTE format('ALTER TABLE vk.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS operators ON vk.%I', t);
        EXECUTE format('CREATE POLICY operators ON vk.%I TO vk_worker, vk_admin USING (true) WITH CHECK (true)', t);
        EXECUTE format('DROP POLICY IF EXISTS readers ON vk.%I', t);
        EXECUTE format('CREATE POLICY readers ON vk.%I FOR SELECT USING (collection_id IN ('
                       'SELECT c.id FROM vk.collections c WHERE has_table_privilege(c.source, ''SELECT'')))', t);
    END LOOP;
END
$$;

-- What an API encoder used: a job's figures to whoever may see the job (its inputs count the rows of
-- its collection); the queue's and text queries' (job 0), summed over every collection a version
-- embeds, to operators only. The check is a function, not a subquery in the policy: on Citus, where
-- vk.api_usage is the coordinator's own and vk.jobs a reference table, planning the subquery in the
-- policy recursed until the stack ran out.
CREATE OR REPLACE FUNCTION vk._may_read_job_id(id bigint) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT vk._may_read_job(j.id, j.kind, j.params, j.collection_id, j.model_id)
                     FROM vk.jobs j WHERE j.id = _may_read_job_id.id), false)
$$;
COMMENT ON FUNCTION vk._may_read_job_id(bigint) IS
    'Internal: whether the caller may see the job of this id (the row security of vk.api_usage).';

ALTER TABLE vk.api_usage ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS operators ON vk.api_usage;
CREATE POLICY operators ON vk.api_usage TO vk_worker, vk_admin USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS readers ON vk.api_usage;
CREATE POLICY readers ON vk.api_usage FOR SELECT
    USING (job_id <> 0 AND vk._may_read_job_id(job_id));
