-- Jobs: train, reembed, recover, evaluate, predict. Queued by the public
-- functions here (vk.train, vk.reembed, vk.schedule_train), claimed by workers
-- under a lease kept alive by heartbeats, taken over when the lease expires.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

CREATE OR REPLACE FUNCTION vk.submit_job_v1(
    job_kind text, job_params jsonb, c_id bigint, m_id bigint DEFAULT NULL, from_schedule bigint DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    job_id bigint;
BEGIN
    INSERT INTO vk.jobs (kind, params, collection_id, model_id, schedule_id)
    VALUES (job_kind, coalesce(job_params, '{}'), c_id, m_id, from_schedule)
    RETURNING id INTO job_id;
    PERFORM pg_notify('vk_jobs', job_id::text);
    RETURN job_id;
END
$$;
COMMENT ON FUNCTION vk.submit_job_v1(text, jsonb, bigint, bigint, bigint) IS
    'Worker contract 1: queue a job (kind, params, collection, model, schedule) and wake the job runners on channel vk_jobs; returns its id.';

-- A train job's params: the model name, its kind, and the kind's parameters
-- checked and completed (vk._train_params), as the job will use them.
CREATE OR REPLACE FUNCTION vk._train_job(model_name text, kind text, params jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF model_name IS NULL OR model_name !~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]*$' THEN
        RAISE EXCEPTION 'vectorkeep: bad model name %', coalesce(quote_literal(model_name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Letters, digits and _ . : / - only; no @ (versions are numbered for you).';
    END IF;
    RETURN jsonb_build_object('model', model_name, 'kind', kind, 'params', vk._train_params(kind, params));
END
$$;
COMMENT ON FUNCTION vk._train_job(text, text, jsonb) IS
    'Internal: a train job''s params (model, kind, params), the name and every parameter checked against vk.model_kinds, defaults filled in.';

-- The collection a model is trained on is always named: a default (it was
-- vk.documents, the sample corpus) silently trained the wrong texts under
-- the user's model name.
CREATE OR REPLACE FUNCTION vk._train_collection(collection text, call text) RETURNS vk.collections
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF collection IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: % needs collection => the collection whose texts it trains on', call
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Name it: SELECT %s(..., collection => %L); collections: %s.', call,
                                coalesce((SELECT min(x.name) FROM vk.collections x), 'documents'),
                                coalesce((SELECT string_agg(x.name, ', ' ORDER BY x.name) FROM vk.collections x), 'none'));
    END IF;
    RETURN vk._collection(collection);
END
$$;
COMMENT ON FUNCTION vk._train_collection(text, text) IS
    'Internal: the collection a train (or schedule_train) call names; NULL raises, listing the collections.';

CREATE OR REPLACE FUNCTION vk.train(model_name text, kind text, params jsonb DEFAULT '{}', collection text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c vk.collections := vk._train_collection(collection, 'vk.train');
BEGIN
    RETURN vk.submit_job_v1('train', vk._train_job(model_name, kind, params), c.id);
END
$$;
COMMENT ON FUNCTION vk.train(text, text, jsonb, text) IS
    'Queue a train job: a worker trains the next version of model_name (a trainable kind of vk.model_kinds) on the collection (always named), stores it, evaluates it and, for an encoder, re-embeds the collection with it. params are checked now against the kind (unknown names, types, bounds) and recorded with every default. Returns the job id.';

-- A collection is embedded with encoders (or adopted vectors that the
-- application writes itself), never an inverter, a map or a next-vector
-- model; a retired version named explicitly comes back.
CREATE OR REPLACE FUNCTION vk._encoder_for(c vk.collections, model text, roles text[]) RETURNS vk.models
LANGUAGE plpgsql AS $$
DECLARE
    m vk.models := vk._require_role(vk.model(model), roles, format('embed collection "%s"', c.name));
BEGIN
    IF m.status = 'retired' THEN
        UPDATE vk.models x SET status = 'ready', updated_at = now() WHERE x.id = m.id RETURNING * INTO m;
    END IF;
    RETURN vk._require_usable(m);
END
$$;
COMMENT ON FUNCTION vk._encoder_for(vk.collections, text, text[]) IS
    'Internal: the version to embed a collection with, of one of roles; other roles raise, a retired version is ready again.';

CREATE OR REPLACE FUNCTION vk.reembed(collection text, model text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c vk.collections := vk._collection(collection);
    m vk.models := vk._encoder_for(c, model, ARRAY['encoder']);  -- adopted vectors cannot be computed
BEGIN
    -- A version new to the collection is written without its HNSW index, which
    -- the job builds at the end; the search default keeps (or gets) it now.
    PERFORM vk._embed_with(c, m, m.id = c.default_model_id);
    RETURN vk.submit_job_v1('reembed', '{}', c.id, m.id);
END
$$;
COMMENT ON FUNCTION vk.reembed(text, text) IS
    'Queue a reembed job: fills vk.embeddings for an encoder version over the whole collection (keyset pages, resumable), then builds its HNSW index once (a version new to the collection is written without it; vk.status.index shows where it stands). From now on, new and changed rows are queued for that version too. A retired version named as name@N comes back. Returns the job id.';

CREATE OR REPLACE FUNCTION vk.schedule_train(
    model_name text, kind text, every interval, params jsonb DEFAULT '{}', collection text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c        vk.collections := vk._train_collection(collection, 'vk.schedule_train');
    k        vk.model_kinds := vk._kind(kind);
    sched_id bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM vk.schedules s WHERE s.enabled AND s.collection_id = c.id AND s.params ->> 'model' = model_name) THEN
        RAISE EXCEPTION 'vectorkeep: % is already retrained on "%" by a schedule', model_name, c.name
            USING ERRCODE = 'duplicate_object',
                  HINT = format('Stop it first: SELECT vk.unschedule(%L, %L);', model_name, c.name);
    END IF;
    -- Each run adds a version: by default only the three newest stay embedded.
    IF k.params ? 'keep' THEN
        params := jsonb_build_object('keep', 3) || coalesce(params, '{}');
    END IF;
    INSERT INTO vk.schedules (kind, params, collection_id, every)
    VALUES ('train', vk._train_job(model_name, kind, params), c.id, every)
    RETURNING vk.schedules.id INTO sched_id;
    RETURN sched_id;
END
$$;
COMMENT ON FUNCTION vk.schedule_train(text, text, interval, jsonb, text) IS
    'Retrain periodically: a train job for model_name is created now and then every interval (skipped while the last one still runs). params are checked now; an encoder keeps its 3 newest versions embedded unless params.keep says otherwise. Stop it with vk.unschedule. Returns the schedule id.';

CREATE OR REPLACE FUNCTION vk.unschedule(model_name text, collection text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    stopped integer;
BEGIN
    UPDATE vk.schedules s SET enabled = false
    WHERE s.enabled AND s.params ->> 'model' = model_name
      AND (collection IS NULL OR s.collection_id = vk.collection_id(collection));
    GET DIAGNOSTICS stopped = ROW_COUNT;
    IF stopped = 0 THEN
        RAISE EXCEPTION 'vectorkeep: no schedule retrains %', model_name || coalesce(format(' on "%s"', collection), '')
            USING ERRCODE = 'no_data_found',
                  HINT = 'Scheduled: ' || coalesce((SELECT string_agg(DISTINCT s.params ->> 'model', ', ') FROM vk.schedules s
                                                    WHERE s.enabled), 'none') || '.';
    END IF;
    RETURN stopped;
END
$$;
COMMENT ON FUNCTION vk.unschedule(text, text) IS
    'Stop retraining model_name on a schedule (on one collection, or all): the schedules are disabled, kept in vk.schedules with their jobs; a job already queued or running goes on (vk.cancel_job stops it). Returns how many were stopped.';

-- Worker API. A job whose lease expired is taken over by the next claim, until
-- it has used max_attempts; then it fails with the reason.
CREATE OR REPLACE FUNCTION vk.claim_job_v1(worker_name text, lease_seconds double precision, kinds text[] DEFAULT NULL)
RETURNS SETOF vk.jobs
LANGUAGE plpgsql AS $$
DECLARE
    -- A variable: Citus refuses now() inside a COALESCE of an UPDATE.
    claimed_at timestamptz := now();
BEGIN
    WITH given_up AS (
        UPDATE vk.jobs j
        SET status = 'failed', finished_at = now(),
            error = format('lease expired %s times: its workers died or were cut off (last: %s)', j.attempts, j.worker)
        WHERE j.status = 'running' AND j.lease_until < now() AND j.attempts >= j.max_attempts
        RETURNING j.model_id, j.kind)
    UPDATE vk.models m SET status = 'failed', updated_at = now()
    FROM given_up g WHERE g.kind = 'train' AND m.id = g.model_id AND m.status = 'training';

    RETURN QUERY
    UPDATE vk.jobs j
    SET status = 'running', worker = worker_name, attempts = j.attempts + 1,
        lease_until = now() + make_interval(secs => lease_seconds), heartbeat_at = now(),
        started_at = coalesce(j.started_at, claimed_at), error = NULL
    WHERE j.id = (
        SELECT x.id FROM vk.jobs x
        WHERE (x.status = 'queued' OR (x.status = 'running' AND x.lease_until < now()))
          AND (kinds IS NULL OR x.kind = ANY (kinds))
        ORDER BY x.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED)
    RETURNING j.*;
END
$$;
COMMENT ON FUNCTION vk.claim_job_v1(text, double precision, text[]) IS
    'Worker contract 1: take the oldest queued job (or one whose lease expired) of the given kinds under a lease; fails jobs that used up their attempts.';

-- Extend the lease and save progress; false when the job is no longer this
-- worker's (taken over after an expired lease, or cancelled): stop working on it.
CREATE OR REPLACE FUNCTION vk.heartbeat_job_v1(
    job_id bigint, worker_name text, lease_seconds double precision, job_progress jsonb DEFAULT NULL
) RETURNS boolean
LANGUAGE sql AS $$
    UPDATE vk.jobs
    SET lease_until = now() + make_interval(secs => lease_seconds), heartbeat_at = now(),
        progress = coalesce(job_progress, progress)
    WHERE id = job_id AND worker = worker_name AND status = 'running'
    RETURNING true;
$$;
COMMENT ON FUNCTION vk.heartbeat_job_v1(bigint, text, double precision, jsonb) IS
    'Worker contract 1: extend a job''s lease and save its progress; NULL when the job is no longer this worker''s (stop working on it).';

CREATE OR REPLACE FUNCTION vk.finish_job_v1(
    job_id bigint, worker_name text, job_metrics jsonb, job_model bigint, job_log text
) RETURNS boolean
LANGUAGE sql AS $$
    UPDATE vk.jobs
    SET status = 'succeeded', finished_at = now(), lease_until = NULL,
        metrics = coalesce(job_metrics, '{}'), model_id = coalesce(job_model, model_id), log_tail = job_log
    WHERE id = job_id AND worker = worker_name AND status = 'running'
    RETURNING true;
$$;
COMMENT ON FUNCTION vk.finish_job_v1(bigint, text, jsonb, bigint, text) IS
    'Worker contract 1: a job succeeded, with its metrics, model and log tail.';

CREATE OR REPLACE FUNCTION vk.fail_job_v1(job_id bigint, worker_name text, job_error text, job_log text)
RETURNS boolean
LANGUAGE sql AS $$
    UPDATE vk.jobs
    SET status = 'failed', finished_at = now(), lease_until = NULL, error = job_error, log_tail = job_log
    WHERE id = job_id AND worker = worker_name AND status = 'running'
    RETURNING true;
$$;
COMMENT ON FUNCTION vk.fail_job_v1(bigint, text, text, text) IS
    'Worker contract 1: a job failed, with its error and log tail.';

-- Worker API: a stopping worker hands its job back (progress kept) so that
-- another resumes it at once instead of waiting for the lease to expire.
CREATE OR REPLACE FUNCTION vk.release_job_v1(job_id bigint, worker_name text, job_progress jsonb)
RETURNS boolean
LANGUAGE sql AS $$
    UPDATE vk.jobs
    SET status = 'queued', worker = NULL, lease_until = NULL, attempts = greatest(attempts - 1, 0),
        progress = coalesce(job_progress, progress)
    WHERE id = job_id AND worker = worker_name AND status = 'running'
    RETURNING true;
$$;
COMMENT ON FUNCTION vk.release_job_v1(bigint, text, jsonb) IS
    'Worker contract 1: a stopping worker hands its job back (progress kept) for another to resume at once.';

-- Worker API: turn due schedules into jobs; the number created.
CREATE OR REPLACE FUNCTION vk.run_due_schedules_v1() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    s       vk.schedules;
    created integer := 0;
    job_id  bigint;
BEGIN
    FOR s IN SELECT * FROM vk.schedules x
             WHERE x.enabled AND x.next_run_at <= now()
             ORDER BY x.next_run_at
             FOR UPDATE SKIP LOCKED LOOP
        IF NOT EXISTS (SELECT 1 FROM vk.jobs j WHERE j.id = s.last_job_id AND j.status IN ('queued', 'running')) THEN
            job_id := vk.submit_job_v1(s.kind, s.params, s.collection_id, NULL, s.id);
            created := created + 1;
        ELSE
            job_id := s.last_job_id;
        END IF;
        UPDATE vk.schedules
        SET last_job_id = job_id,
            next_run_at = s.next_run_at + s.every * greatest(1, ceil(extract(epoch FROM now() - s.next_run_at)
                                                                     / extract(epoch FROM s.every)))
        WHERE id = s.id;
    END LOOP;
    RETURN created;
END
$$;
COMMENT ON FUNCTION vk.run_due_schedules_v1() IS
    'Worker contract 1: turn due schedules into jobs (never two at once per schedule); the number created.';

-- Worker contract: queue the next page of rows after after_key (NULL: from
-- the start) whose vector for (c, m) is missing or stale. Returns the page's
-- last key (NULL when the table is exhausted), the rows read and the rows
-- queued. The text comes from the author's function (vk_expr.texts_c<id>).
CREATE OR REPLACE FUNCTION vk.enqueue_page_v1(c_id bigint, m_id bigint, after_key text, page_size integer)
RETURNS TABLE (last_key text, scanned integer, queued integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    p_pk   text[];
    p_sha  bytea[];
    e_pk   text[];
    e_sha  bytea[];
    todo   text[];
    n      integer;
BEGIN
    -- One step at a time, the page, then its vectors, then the queue: on
    -- Citus one statement joining them would run the text function on the
    -- shards (and Citus takes no INSERT in a WITH).
    EXECUTE format('SELECT array_agg(t.pk ORDER BY t.n), '
                   '       array_agg(CASE WHEN t.body ~ ''[^[:space:]]'' THEN sha256(convert_to(t.body, ''UTF8'')) END '
                   '                 ORDER BY t.n) '
                   'FROM vk_expr.%I($1, $2) WITH ORDINALITY AS t(pk, body, n)', 'texts_c' || c_id)
        INTO p_pk, p_sha USING after_key, page_size;
    SELECT array_agg(e.pk), array_agg(e.text_sha256) INTO e_pk, e_sha
    FROM vk.embeddings e
    WHERE e.collection_id = c_id AND e.model_id = m_id AND e.chunk = 0 AND e.pk = ANY (p_pk);
    -- Rows with text whose vector is missing or was made from another text.
    SELECT array_agg(p.pk) INTO todo
    FROM unnest(p_pk, p_sha) AS p(pk, sha)
    WHERE p.sha IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM unnest(e_pk, e_sha) AS e(pk, sha) WHERE e.pk = p.pk AND e.sha = p.sha);
    INSERT INTO vk.queue (collection_id, pk, model_id, priority)
    SELECT c_id, t.pk, m_id, 2 FROM unnest(todo) AS t(pk)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN QUERY SELECT p_pk[cardinality(p_pk)], coalesce(cardinality(p_pk), 0), n;
END
$$;
COMMENT ON FUNCTION vk.enqueue_page_v1(bigint, bigint, text, integer) IS
    'Worker contract 1: queue the next keyset page of rows whose vector for (collection, model) is missing or stale; returns the page''s last key, rows read, rows queued.';

-- Worker contract: a train job's new version joins its collection as a
-- backfill (no HNSW or keyword index until its reembed job has written the
-- vectors), unless it is already the collection's search default.
CREATE OR REPLACE FUNCTION vk.backfill_v1(c_id bigint, m_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c vk.collections := vk.collection_v1(c_id);
    m vk.models := vk.model_v1(m_id);
BEGIN
    RETURN vk._embed_with(c, m, m.id = c.default_model_id);
END
$$;
COMMENT ON FUNCTION vk.backfill_v1(bigint, bigint) IS
    'Worker contract 1 (revision 0014): keep a collection embedded with a version from now on, its HNSW index left for the reembed job to build after the backfill (unless it is the search default); false when it already was.';

-- Each index of a (collection, model) with its CREATE statement and where it
-- stands: present, valid, or being built right now by some session.
CREATE OR REPLACE FUNCTION vk._index_builds(c vk.collections, m vk.models, concurrent boolean)
RETURNS TABLE (index_name name, statement text, present boolean, valid boolean, in_progress boolean)
LANGUAGE sql STABLE AS $$
    SELECT x.index_name, x.statement, i.indexrelid IS NOT NULL, coalesce(i.indisvalid AND i.indisready, false),
           EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid)
    FROM vk._index_statements(c, m, concurrent) x
    LEFT JOIN pg_class cl ON cl.relname = x.index_name AND cl.relnamespace = 'vk'::regnamespace
    LEFT JOIN pg_index i ON i.indexrelid = cl.oid
$$;
COMMENT ON FUNCTION vk._index_builds(vk.collections, vk.models, boolean) IS
    'Internal: each index of a (collection, model) with its CREATE statement, whether it is present and valid, and whether a build of it is under way.';

-- Worker contract: how a reembed job builds the indexes it deferred. A role
-- that owns vk.embeddings (the embedded default's) builds them with CREATE
-- INDEX CONCURRENTLY, which blocks no writer (unless the table is
-- partitioned, docs/partition-embeddings.sql); any other calls
-- vk.build_index_v1, whose plain CREATE INDEX holds back writes to
-- vk.embeddings until it ends. statements: what is left to do, in order (an
-- index a failed build left invalid is dropped first); state: building while
-- another session builds one of them, else vk._index_state.
CREATE OR REPLACE FUNCTION vk.index_plan_v1(c_id bigint, m_id bigint)
RETURNS TABLE (state text, statements text[], concurrent boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c        vk.collections := vk.collection_v1(c_id);
    m        vk.models := vk.model_v1(m_id);
    ix       record;
    todo     text[] := '{}';
    building boolean := false;
    owner    boolean;
BEGIN
    -- PostgreSQL builds no index concurrently on a partitioned table.
    SELECT pg_has_role(session_user, t.relowner, 'MEMBER') AND t.relkind = 'r' INTO owner
    FROM pg_class t WHERE t.oid = 'vk.embeddings'::regclass;
    FOR ix IN SELECT * FROM vk._index_builds(c, m, owner) LOOP
        IF NOT ix.present THEN
            todo := todo || ix.statement;
        ELSIF ix.in_progress THEN
            building := true;
        ELSIF NOT ix.valid THEN
            todo := todo || format('DROP INDEX %s IF EXISTS vk.%I', CASE WHEN owner THEN 'CONCURRENTLY' ELSE '' END,
                                   ix.index_name) || ix.statement;
        END IF;
    END LOOP;
    RETURN QUERY SELECT CASE WHEN building THEN 'building' ELSE vk._index_state(c_id, m) END, todo, owner;
END
$$;
COMMENT ON FUNCTION vk.index_plan_v1(bigint, bigint) IS
    'Worker contract 1 (revision 0014): where a (collection, model)''s deferred indexes (HNSW, keyword) stand, the statements that build what is missing (CREATE INDEX CONCURRENTLY when the caller owns vk.embeddings), and whether the caller may run them itself.';

CREATE OR REPLACE FUNCTION vk.build_index_v1(c_id bigint, m_id bigint) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c    vk.collections := vk.collection_v1(c_id);
    m    vk.models := vk.model_v1(m_id);
    ix   record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM vk.collection_models cm WHERE cm.collection_id = c_id AND cm.model_id = m_id) THEN
        RAISE EXCEPTION 'vectorkeep: collection % is not embedded with model %', c_id, m_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- maintenance_work_mem and max_parallel_maintenance_workers are the caller's session settings.
    FOR ix IN SELECT * FROM vk._index_builds(c, m, false) LOOP
        IF ix.in_progress THEN
            RETURN 'building';  -- another session's build
        ELSIF ix.present AND NOT ix.valid THEN
            EXECUTE format('DROP INDEX IF EXISTS vk.%I', ix.index_name);
        END IF;
        EXECUTE ix.statement;
    END LOOP;
    RETURN vk._index_state(c_id, m);
END
$$;
COMMENT ON FUNCTION vk.build_index_v1(bigint, bigint) IS
    'Worker contract 1 (revision 0014): build a (collection, model)''s deferred HNSW and keyword indexes with plain CREATE INDEX (writes to vk.embeddings wait for it), with the caller''s maintenance_work_mem and max_parallel_maintenance_workers; returns the index state.';

-- Worker contract: the data a job reads, for its record (the owner reads
-- only the key column: the count and largest key of the table).
CREATE OR REPLACE FUNCTION vk.snapshot_v1(c_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c    vk.collections;
    snap jsonb;
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = c_id;
    EXECUTE format('SELECT jsonb_build_object(''collection'', %L, ''rows'', count(*), ''max_key'', max(s.%I)::text, '
                   '''at'', now(), ''xmin'', pg_snapshot_xmin(pg_current_snapshot())::text) FROM %s s',
                   c.name, c.pk_column, c.source)
        INTO snap;
    RETURN snap;
END
$$;
COMMENT ON FUNCTION vk.snapshot_v1(bigint) IS
    'Worker contract 1: what a job reads of a collection (rows, max key, time, snapshot xmin), for its record.';

-- Worker contract: every text of a collection with its key, in key order
-- (streamed by a server-side cursor; held-out rows are chosen by the caller),
-- read with the author's rights.
CREATE OR REPLACE FUNCTION vk.collection_texts_v1(c_id bigint) RETURNS TABLE (pk text, body text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT t.pk, t.body FROM vk_expr.%I(NULL, NULL) t WHERE t.body ~ ''[^[:space:]]''',
                                'texts_c' || c_id);
END
$$;
COMMENT ON FUNCTION vk.collection_texts_v1(bigint) IS
    'Worker contract 1: every non-empty text of a collection with its key, in key order (stream it with a server-side cursor).';


-- Worker contract: the jobs' other reads and writes.

CREATE OR REPLACE FUNCTION vk.collection_v1(collection_id bigint) RETURNS vk.collections
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (SELECT c FROM vk.collections c WHERE c.id = collection_id)
$$;
COMMENT ON FUNCTION vk.collection_v1(bigint) IS 'Worker contract 1: the vk.collections row of that id (NULL when none).';

CREATE OR REPLACE FUNCTION vk.record_snapshot_v1(job_id bigint, collection_id bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    snap jsonb;
BEGIN
    -- On Citus the snapshot reads a distributed table, then vk.jobs (a reference table) is written.
    PERFORM vk._one_connection_per_node();
    snap := vk.snapshot_v1(record_snapshot_v1.collection_id);
    UPDATE vk.jobs j SET snapshot = snap WHERE j.id = record_snapshot_v1.job_id;
    RETURN snap;
END
$$;
COMMENT ON FUNCTION vk.record_snapshot_v1(bigint, bigint) IS
    'Worker contract 1: record on the job what it reads of the collection (vk.snapshot_v1); returns it.';

CREATE OR REPLACE FUNCTION vk.queue_counts_v1(collection_id bigint, model_id bigint)
RETURNS TABLE (queued bigint, dead bigint, first_error text)
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT count(*), count(*) FILTER (WHERE q.dead), min(q.last_error) FILTER (WHERE q.dead)
    FROM vk.queue q WHERE q.collection_id = queue_counts_v1.collection_id AND q.model_id = queue_counts_v1.model_id;
$$;
COMMENT ON FUNCTION vk.queue_counts_v1(bigint, bigint) IS
    'Worker contract 1: queue rows of (collection, model) still there, how many are dead, and one dead row''s error.';

-- The version a train job produces, reserved at its start (status training)
-- and recorded on the job, so that a job resumed elsewhere finishes it.
CREATE OR REPLACE FUNCTION vk.reserve_model_v1(job_id bigint, model_name text, kind text, params jsonb)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    -- Computed first: Citus refuses a subquery inside an INSERT into its tables.
    next_version integer := coalesce((SELECT max(x.version) FROM vk.models x WHERE x.name = model_name), 0) + 1;
    reserved     bigint;
BEGIN
    INSERT INTO vk.models (name, version, kind, dim, distance, params, status, trained_by_job, storage)
    VALUES (model_name, next_version, kind, 1, 'cosine', coalesce(params, '{}'), 'training', job_id,
            coalesce(params ->> 'storage', 'vector'))
    RETURNING id INTO reserved;
    UPDATE vk.jobs j SET model_id = reserved WHERE j.id = reserve_model_v1.job_id;
    RETURN reserved;
END
$$;
COMMENT ON FUNCTION vk.reserve_model_v1(bigint, text, text, jsonb) IS
    'Worker contract 1: reserve the next version of model_name for a train job (status training, recorded on the job; its storage from params.storage, else vector); returns its id.';

CREATE OR REPLACE FUNCTION vk.model_trained_v1(
    model_id bigint, dim integer, params jsonb, metrics jsonb, fingerprint vector
) RETURNS void
LANGUAGE sql AS $$
    UPDATE vk.models
    SET dim = model_trained_v1.dim, params = model_trained_v1.params, metrics = model_trained_v1.metrics,
        fingerprint = model_trained_v1.fingerprint, status = 'ready', updated_at = now()
    WHERE id = model_trained_v1.model_id;
$$;
COMMENT ON FUNCTION vk.model_trained_v1(bigint, integer, jsonb, jsonb, vector) IS
    'Worker contract 1: a reserved version is trained: its dimension, params (with the artifact''s sha256), metrics and fingerprint; status ready.';

CREATE OR REPLACE FUNCTION vk.model_failed_v1(model_id bigint) RETURNS void
LANGUAGE sql AS $$
    UPDATE vk.models SET status = 'failed', updated_at = now()
    WHERE id = model_failed_v1.model_id AND status = 'training';
$$;
COMMENT ON FUNCTION vk.model_failed_v1(bigint) IS 'Worker contract 1: a reserved version will not be trained (status failed).';

CREATE OR REPLACE FUNCTION vk.store_artifact_v1(model_id bigint, name text, data bytea) RETURNS text
LANGUAGE sql AS $$
    INSERT INTO vk.model_artifacts AS a (model_id, name, data, sha256, size_bytes)
    VALUES (model_id, name, data, sha256(data), length(data))
    ON CONFLICT ON CONSTRAINT model_artifacts_pkey DO UPDATE
    SET data = EXCLUDED.data, sha256 = EXCLUDED.sha256, size_bytes = EXCLUDED.size_bytes, created_at = EXCLUDED.created_at
    RETURNING encode(a.sha256, 'hex');
$$;
COMMENT ON FUNCTION vk.store_artifact_v1(bigint, text, bytea) IS
    'Worker contract 1: store a trained version''s artifact; returns its sha256 (hex).';

CREATE OR REPLACE FUNCTION vk.artifact_v1(model_id bigint, name text) RETURNS TABLE (data bytea, sha256 text)
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT a.data, encode(a.sha256, 'hex') FROM vk.model_artifacts a
    WHERE a.model_id = artifact_v1.model_id AND a.name = artifact_v1.name;
$$;
COMMENT ON FUNCTION vk.artifact_v1(bigint, text) IS
    'Worker contract 1: an artifact''s bytes and recorded sha256; the loader checks both against the version''s params.';

CREATE OR REPLACE FUNCTION vk.collection_pairs_v1(collection_id bigint, model_id bigint)
RETURNS TABLE (pk text, body text, embedding vector)
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT e.pk, e.body, e.embedding FROM vk.embeddings e
    WHERE e.collection_id = collection_pairs_v1.collection_id AND e.model_id = collection_pairs_v1.model_id
    ORDER BY e.pk;
$$;
COMMENT ON FUNCTION vk.collection_pairs_v1(bigint, bigint) IS
    'Worker contract 1: the (text, vector) pairs of a collection under a version, in key order: what a distilled model learns from.';

-- One vector a row (the mean of its chunks' vectors), with the hash of its
-- text, in key order; pks NULL means every row. Every chunk of a row carries
-- its row's hash: the first chunk's is taken (min(bytea) exists only from
-- PostgreSQL 18).
CREATE OR REPLACE FUNCTION vk.row_vectors_v1(collection_id bigint, model_id bigint, pks text[])
RETURNS TABLE (pk text, embedding vector, text_sha256 bytea)
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT e.pk, avg(e.embedding), (array_agg(e.text_sha256 ORDER BY e.chunk))[1] FROM vk.embeddings e
    WHERE e.collection_id = row_vectors_v1.collection_id AND e.model_id = row_vectors_v1.model_id
      AND (pks IS NULL OR e.pk = ANY (pks))
    GROUP BY e.pk ORDER BY e.pk;
$$;
COMMENT ON FUNCTION vk.row_vectors_v1(bigint, bigint, text[]) IS
    'Worker contract 1: one vector a row (the mean of its chunks), with its text''s hash, for the rows named (all when NULL).';

-- A running job sees the cancellation at its next heartbeat (vk.heartbeat_job_v1
-- answers NULL) and stops; its progress stays on the row.
CREATE OR REPLACE FUNCTION vk.cancel_job(job_id bigint) RETURNS TABLE (id bigint, kind text, status text)
LANGUAGE plpgsql AS $$
DECLARE
    j vk.jobs;
BEGIN
    UPDATE vk.jobs x SET status = 'cancelled', finished_at = now(), lease_until = NULL
    WHERE x.id = job_id AND x.status IN ('queued', 'running')
    RETURNING * INTO j;
    IF j.id IS NULL THEN
        SELECT * INTO j FROM vk.jobs x WHERE x.id = job_id;
        RAISE EXCEPTION 'vectorkeep: job % cannot be cancelled (%)', job_id, coalesce(j.status, 'no such job')
            USING ERRCODE = CASE WHEN j.id IS NULL THEN 'no_data_found' ELSE 'object_not_in_prerequisite_state' END,
                  HINT = 'Only queued and running jobs can be cancelled: SELECT id, kind, status FROM vk.jobs.';
    END IF;
    UPDATE vk.models m SET status = 'failed', updated_at = now()
    WHERE j.kind = 'train' AND m.id = j.model_id AND m.status = 'training';
    -- A reembed stops queueing, and the rows it queued are dropped; the vectors
    -- written stay, and vk.reembed again resumes (it queues what is missing).
    IF j.kind = 'reembed' THEN
        DELETE FROM vk.queue q WHERE q.collection_id = j.collection_id AND q.model_id = j.model_id;
    END IF;
    RETURN QUERY SELECT j.id, j.kind, j.status;
END
$$;
COMMENT ON FUNCTION vk.cancel_job(bigint) IS
    'Cancel a queued or running job: a running one stops within seconds (at its next progress report). A train job''s reserved version fails; a reembed''s queued rows are dropped and the vectors written stay (vk.reembed again resumes, vk.retire removes them).';

-- Worker contract: after a train job, keep the newest `keep` versions of a
-- model name embedded in the collection; older ones are retired from it
-- (never its search default, never from another collection).
CREATE OR REPLACE FUNCTION vk.keep_newest_v1(collection_id bigint, model_name text, keep integer) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    c       vk.collections := vk.collection_v1(collection_id);
    old     vk.models;
    retired text[] := '{}';
BEGIN
    FOR old IN SELECT m.* FROM vk.models m JOIN vk.collection_models cm ON cm.model_id = m.id
               WHERE cm.collection_id = c.id AND m.name = model_name AND m.id IS DISTINCT FROM c.default_model_id
                 AND m.status IN ('ready', 'active')
               ORDER BY m.version DESC
               OFFSET greatest(keep, 1) - CASE WHEN (SELECT d.name FROM vk.models d WHERE d.id = c.default_model_id)
                                                     = model_name THEN 1 ELSE 0 END LOOP
        PERFORM vk.retire(vk.model_label(old), c.name, confirm => true);  -- the collection's keep policy
        retired := retired || vk.model_label(old);
    END LOOP;
    RETURN retired;
END
$$;
COMMENT ON FUNCTION vk.keep_newest_v1(bigint, text, integer) IS
    'Worker contract 1: retire from the collection the versions of model_name beyond the newest keep (the search default counts and stays); their labels.';

-- Worker contract: running jobs and the progress they last saved, for metrics.
CREATE OR REPLACE FUNCTION vk.running_jobs_v1()
RETURNS TABLE (id bigint, kind text, phase text, done double precision, total double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT j.id, j.kind, j.progress ->> 'phase' AS phase,
           CASE WHEN jsonb_typeof(j.progress -> 'done') = 'number' THEN (j.progress ->> 'done')::float8 END AS done,
           CASE WHEN jsonb_typeof(j.progress -> 'total') = 'number' THEN (j.progress ->> 'total')::float8 END AS total
    FROM vk.jobs j
    WHERE j.status = 'running'
    ORDER BY j.id
$$;
COMMENT ON FUNCTION vk.running_jobs_v1() IS
    'Worker contract 1 (revision 0014): running jobs with the phase, done and total of their last saved progress (NULL where a job has not said).';
