-- Jobs: train, reembed; claimed with a lease, kept alive by heartbeats,
-- taken over when the lease expires (the worker died).
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.

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

CREATE OR REPLACE FUNCTION vk.trainable_kinds() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['doc2vec', 'tfidf', 'tfidf-mlp'];

CREATE OR REPLACE FUNCTION vk.check_train_args(model_name text, kind text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF model_name IS NULL OR model_name !~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]*$' THEN
        RAISE EXCEPTION 'vectorkeep: bad model name %', coalesce(quote_literal(model_name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Letters, digits and _ . : / - only; no @ (versions are numbered for you).';
    END IF;
    IF kind IS NULL OR NOT kind = ANY (vk.trainable_kinds()) THEN
        RAISE EXCEPTION 'vectorkeep: cannot train a model of kind %', coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Trainable kinds: ' || array_to_string(vk.trainable_kinds(), ', ')
                      || '. Register encoders such as sentence-transformers with `vectorkeep models register`.';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION vk.train(model_name text, kind text, params jsonb DEFAULT '{}', collection text DEFAULT 'documents')
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c vk.collections := vk.collection(collection);
BEGIN
    PERFORM vk.check_train_args(model_name, kind);
    RETURN vk.submit_job_v1(
        'train', jsonb_build_object('model', model_name, 'kind', kind, 'params', coalesce(params, '{}')), c.id);
END
$$;
COMMENT ON FUNCTION vk.train(text, text, jsonb, text) IS
    'Queue a train job: a worker trains the next version of model_name (kind doc2vec, tfidf or tfidf-mlp) on the collection''s text, stores it, evaluates it and re-embeds the collection with it. Returns the job id.';

-- Register a model version for a collection (its HNSW index and the row that
-- makes triggers queue new and changed rows for it); no backfill.
CREATE OR REPLACE FUNCTION vk.embed_with_v1(c vk.collections, m vk.models) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    ix name := format('embeddings_c%s_m%s_hnsw', c.id, m.id);
BEGIN
    IF EXISTS (SELECT 1 FROM vk.collection_models x WHERE x.collection_id = c.id AND x.model_id = m.id) THEN
        RETURN false;
    END IF;
    IF m.dim <= 2000 THEN
        EXECUTE format(
            'CREATE INDEX %I ON vk.embeddings USING hnsw ((embedding::vector(%s)) %s) '
            'WHERE collection_id = %s AND model_id = %s',
            ix, m.dim, vk.opclass(m.distance), c.id, m.id);
    ELSE
        RAISE NOTICE 'vectorkeep: % has % dimensions, over HNSW''s 2000: % is searched exactly',
            vk.model_label(m), m.dim, c.name;
    END IF;
    INSERT INTO vk.collection_models (collection_id, model_id, index_name) VALUES (c.id, m.id, ix);
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION vk.add_model(collection_name text, model text, make_default boolean DEFAULT false)
RETURNS vk.collection_models
LANGUAGE plpgsql AS $$
DECLARE
    c      vk.collections := vk.collection(collection_name);
    m      vk.models := vk.require_usable(vk.model(model));
    cm     vk.collection_models;
    queued bigint;
BEGIN
    IF vk.embed_with_v1(c, m) THEN
        EXECUTE format(
            'INSERT INTO vk.queue (collection_id, pk, model_id) SELECT $1, s.%I::text, $2 FROM %s s '
            'ON CONFLICT DO NOTHING', c.pk_column, c.source)
            USING c.id, m.id;
        GET DIAGNOSTICS queued = ROW_COUNT;
        PERFORM vk.enqueued_v1(c.id, queued);
    END IF;
    IF make_default OR c.default_model_id IS NULL THEN
        UPDATE vk.collections SET default_model_id = m.id WHERE id = c.id;
        UPDATE vk.models SET status = 'active', updated_at = now() WHERE id = m.id AND status = 'ready';
    END IF;
    SELECT * INTO cm FROM vk.collection_models x WHERE x.collection_id = c.id AND x.model_id = m.id;
    RETURN cm;
END
$$;

CREATE OR REPLACE FUNCTION vk.reembed(collection text, model text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c vk.collections := vk.collection(collection);
    m vk.models := vk.require_usable(vk.model(model));
BEGIN
    PERFORM vk.embed_with_v1(c, m);
    RETURN vk.submit_job_v1('reembed', '{}', c.id, m.id);
END
$$;
COMMENT ON FUNCTION vk.reembed(text, text) IS
    'Queue a reembed job: fills vk.embeddings for a model version over the whole collection (keyset pages, resumable). From now on, new and changed rows are queued for that version too. Returns the job id.';

-- Worker API. A job whose lease expired is taken over by the next claim, until
-- it has used max_attempts; then it fails with the reason.
CREATE OR REPLACE FUNCTION vk.claim_job_v1(worker_name text, lease_seconds double precision, kinds text[] DEFAULT NULL)
RETURNS SETOF vk.jobs
LANGUAGE plpgsql AS $$
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
        started_at = coalesce(j.started_at, now()), error = NULL
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

CREATE OR REPLACE FUNCTION vk.fail_job_v1(job_id bigint, worker_name text, job_error text, job_log text)
RETURNS boolean
LANGUAGE sql AS $$
    UPDATE vk.jobs
    SET status = 'failed', finished_at = now(), lease_until = NULL, error = job_error, log_tail = job_log
    WHERE id = job_id AND worker = worker_name AND status = 'running'
    RETURNING true;
$$;

CREATE OR REPLACE FUNCTION vk.schedule_train(
    model_name text, kind text, every interval, params jsonb DEFAULT '{}', collection text DEFAULT 'documents'
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c        vk.collections := vk.collection(collection);
    sched_id bigint;
BEGIN
    PERFORM vk.check_train_args(model_name, kind);
    INSERT INTO vk.schedules (kind, params, collection_id, every)
    VALUES ('train', jsonb_build_object('model', model_name, 'kind', kind, 'params', coalesce(params, '{}')),
            c.id, every)
    RETURNING vk.schedules.id INTO sched_id;
    RETURN sched_id;
END
$$;
COMMENT ON FUNCTION vk.schedule_train(text, text, interval, jsonb, text) IS
    'Retrain periodically: a train job for model_name is created now and then every interval (skipped while the last one still runs). Returns the schedule id.';

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
