-- The job protocol: jobs are submitted, claimed by workers under a lease kept
-- alive by heartbeats, taken over when the lease expires, finished, failed,
-- handed back or cancelled; due schedules become jobs.
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
