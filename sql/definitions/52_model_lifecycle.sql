-- A trained version's life through the worker contract: reserved when its
-- train job starts, trained (metrics) or failed, its artifacts stored and read
-- back sha256-checked, and the oldest versions retired past `keep`.
-- Activation and retirement by a user are in 60_activation.sql.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

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
