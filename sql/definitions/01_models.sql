-- Model versions: naming, lookup, registration, and the guard on vectors
-- written for them.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.
-- "@extschema:vector@" is pgvector's schema, filled in when the file is applied.

CREATE OR REPLACE FUNCTION vk.probe_text() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'vectorkeep fingerprint probe: the quick brown fox jumps over the lazy dog, 1234567890.';
COMMENT ON FUNCTION vk.probe_text() IS
    'The fixed text whose vector is a model''s fingerprint (vk.models.fingerprint): encode it with an encoder to check that it is the one a version was registered with.';

CREATE OR REPLACE FUNCTION vk.model_label(m vk.models) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN m.name || '@' || m.version;
COMMENT ON FUNCTION vk.model_label(vk.models) IS
    'A model version''s label, name@version: SELECT vk.model_label(m) FROM vk.models m.';

-- 'name@version' is exact; a bare 'name' means its active version, or else its
-- newest ready one (a model registered but not yet used anywhere).
CREATE OR REPLACE FUNCTION vk.model(spec text) RETURNS vk.models
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m_name    text;
    m_version integer;
    m         vk.models;
BEGIN
    IF spec IS NULL OR btrim(spec) = '' THEN
        RAISE EXCEPTION 'vectorkeep: no model given'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name a model as name or name@version (see SELECT * FROM vk.models).';
    END IF;
    IF position('@' IN spec) > 0 THEN
        m_name := split_part(spec, '@', 1);
        IF split_part(spec, '@', 2) !~ '^[0-9]{1,9}$' THEN
            RAISE EXCEPTION 'vectorkeep: bad model version in "%"', spec
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Write name@N with N a positive integer, e.g. minilm@1.';
        END IF;
        m_version := split_part(spec, '@', 2)::integer;
        SELECT * INTO m FROM vk.models AS x WHERE x.name = m_name AND x.version = m_version;
    ELSE
        SELECT * INTO m FROM vk.models AS x
        WHERE x.name = spec AND x.status IN ('active', 'ready')
        ORDER BY x.status = 'active' DESC, x.version DESC
        LIMIT 1;
    END IF;
    IF m.id IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: unknown model "%"', spec
            USING ERRCODE = 'undefined_object',
                  HINT = vk._usable_models_hint();
    END IF;
    -- Refused here, before any other check can answer (not ready, not
    -- embedded for a collection) for a version the caller may not use.
    RETURN vk._require_may_use(m);
END
$$;
COMMENT ON FUNCTION vk.model(text) IS
    'Resolve "name@version", or "name" (its active version, else its newest ready one), to a vk.models row; unknown models raise, and so does a version trained on a table the caller may not read (vk._may_use).';

-- A trained version carries what it learned from its table (a tfidf
-- vocabulary answers which words occur there, a model's vectors how rows
-- relate), so it is for the roles that may read that table. Operators use
-- every version: they train, embed and activate them. A version not trained
-- here (registered or adopted) has learned nothing of vk's tables.
--
-- No owner-run helper is needed to read the training job: row security on
-- vk.jobs (98_row_security.sql) shows a train job to the roles that may read
-- its collection, the same test as this one, so a role that may use the
-- version sees the job; called from an owner-run function (who =
-- session_user), it reads every job. A plain function also keeps vk_app off
-- one more function that runs as its owner.
CREATE OR REPLACE FUNCTION vk._may_use_trained(trained_by_job bigint, who name) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        _may_use_trained.trained_by_job IS NULL
        OR pg_has_role(who, 'vk_worker', 'USAGE') OR pg_has_role(who, 'vk_admin', 'USAGE')
        OR pg_has_role(who, (SELECT t.relowner FROM pg_class t WHERE t.oid = 'vk.jobs'::regclass), 'USAGE')
        -- no row once the collection is detached (its jobs keep a NULL collection)
        OR (SELECT has_table_privilege(who, c.source, 'SELECT')
            FROM vk.jobs j JOIN vk.collections c ON c.id = j.collection_id WHERE j.id = _may_use_trained.trained_by_job),
        false)
$$;
COMMENT ON FUNCTION vk._may_use_trained(bigint, name) IS
    'Internal: vk._may_use of a version trained by that job (NULL: not trained here), for queries that read vk.models by columns (Citus passes no whole row of its tables to a function).';

CREATE OR REPLACE FUNCTION vk._may_use(m vk.models, who name) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT vk._may_use_trained(m.trained_by_job, who)
$$;
COMMENT ON FUNCTION vk._may_use(vk.models, name) IS
    'Internal: whether role who may use a model version: one not trained here (registered, adopted) always; a trained one if who may SELECT the table of the collection it was trained on (never once that collection is detached); every version for members of vk_worker and vk_admin and for vk''s owner. Pass current_user, or session_user inside a SECURITY DEFINER function (whose current_user is the owner).';

CREATE OR REPLACE FUNCTION vk._require_may_use(m vk.models) RETURNS vk.models
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT vk._may_use(m, current_user) THEN
        RAISE EXCEPTION 'vectorkeep: permission denied for model %: % may not read the table it was trained on',
                vk.model_label(m), current_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A trained version answers only the roles that may SELECT the table it was trained on: '
                      || 'ask an operator to GRANT SELECT on that table to this role (vk.jobs shows it to them), '
                      || 'or use another version. ' || vk._usable_models_hint();
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION vk._require_may_use(vk.models) IS
    'Internal: the version itself when the caller (current_user) may use it (vk._may_use); raises insufficient_privilege otherwise.';

-- Hints list what the caller can use, not every version ever registered: a
-- version trained on a table it may not read is not named, nor counted.
-- A quoted body, not a SQL-standard one: revision 0014's definition, which a
-- downgrade restores, has no vk._may_use, and a SQL-standard body would keep
-- that function from being dropped first.
CREATE OR REPLACE FUNCTION vk._usable_models_hint() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT 'Usable versions: ' || coalesce(
        (SELECT string_agg(format('%s@%s (%s)', x.name, x.version, x.kind), ', ' ORDER BY x.name, x.version)
         FROM vk.models x WHERE x.status IN ('active', 'ready') AND vk._may_use_trained(x.trained_by_job, current_user)),
        'none')
        || coalesce(' (' || (SELECT nullif(count(*), 0) FROM vk.models x
                             WHERE x.status NOT IN ('active', 'ready')
                               AND vk._may_use_trained(x.trained_by_job, current_user))
                    || ' more are training, failed or retired: SELECT name, version, status FROM vk.models)', '')
        || '.'
$$;
COMMENT ON FUNCTION vk._usable_models_hint() IS
    'Internal: the hint of errors that name a model: the ready and active versions the caller may use, and how many others of those there are.';

CREATE OR REPLACE FUNCTION vk._require_usable(m vk.models) RETURNS vk.models
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- Before the status: a version the caller may not use tells it nothing more.
    PERFORM vk._require_may_use(m);
    IF m.status NOT IN ('active', 'ready') THEN
        RAISE EXCEPTION 'vectorkeep: model % is not ready (status %)', vk.model_label(m), m.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE m.status
                      WHEN 'retired' THEN format('Bring it back with SELECT vk.reembed(collection, %L); or ', vk.model_label(m))
                      WHEN 'training' THEN 'Wait for its train job (vectorkeep jobs), or '
                      ELSE '' END || 'use another version. ' || vk._usable_models_hint();
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION vk._require_usable(vk.models) IS
    'Internal: the version itself when it is ready or active and the caller may use it (vk._may_use); raises otherwise.';

CREATE OR REPLACE FUNCTION vk._check_dimension(v vector, m vk.models) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: the query vector is NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF vector_dims(v) <> m.dim THEN
        RAISE EXCEPTION 'vectorkeep: vector has % dimensions but model % has %',
                vector_dims(v), vk.model_label(m), m.dim
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Encode the text with %s, or name the model that made this vector.',
                                vk.model_label(m));
    END IF;
END
$$;
COMMENT ON FUNCTION vk._check_dimension(vector, vk.models) IS
    'Internal: raises unless the vector is not NULL and has the model''s dimension.';

-- Any writer (worker, job or a DBA by hand) is held to the model's dimension.
CREATE OR REPLACE FUNCTION vk._embeddings_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    m vk.models;
BEGIN
    SELECT * INTO m FROM vk.models WHERE id = NEW.model_id;
    PERFORM vk._check_dimension(NEW.embedding, m);
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION vk._embeddings_check() IS
    'Trigger on vk.embeddings: a vector must have its model version''s dimension, whoever writes it.';

-- A statement of its own (Citus sends a distributed table's DDL to the nodes
-- as the text of its statement, which must not be this whole file).
DO $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);  -- a trigger on a Citus table
    END IF;
    EXECUTE 'CREATE OR REPLACE TRIGGER embeddings_check '
            'BEFORE INSERT OR UPDATE OF embedding, model_id ON vk.embeddings '
            'FOR EACH ROW EXECUTE FUNCTION vk._embeddings_check()';
END
$$;

CREATE OR REPLACE FUNCTION vk._touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION vk._touch_updated_at() IS 'Trigger on vk.documents: keeps updated_at current.';

CREATE OR REPLACE TRIGGER documents_touch
    BEFORE UPDATE ON vk.documents
    FOR EACH ROW EXECUTE FUNCTION vk._touch_updated_at();

-- The precision a version's index and searches use. Changed only while the
-- version has no vectors anywhere: its indexes are built in that type.
CREATE OR REPLACE FUNCTION vk.set_storage(model text, storage text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    m vk.models := vk.model(model);
BEGIN
    IF storage IS NULL OR storage NOT IN ('vector', 'halfvec') THEN
        RAISE EXCEPTION 'vectorkeep: storage must be vector or halfvec, not %', coalesce(storage, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'halfvec: 2 bytes a dimension in the HNSW index (half of vector), up to 4,000 dimensions.';
    END IF;
    IF m.storage = storage THEN
        RETURN vk.model_label(m);
    END IF;
    IF EXISTS (SELECT 1 FROM vk.collection_models cm WHERE cm.model_id = m.id) THEN
        RAISE EXCEPTION 'vectorkeep: % already has vectors in %', vk.model_label(m),
                (SELECT string_agg(c.name, ', ' ORDER BY c.name) FROM vk.collections c
                 JOIN vk.collection_models cm ON cm.collection_id = c.id WHERE cm.model_id = m.id)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set the storage of a new version before it is embedded (vectorkeep models register --storage, or the train parameter storage), or retire this one from those collections first.';
    END IF;
    UPDATE vk.models x SET storage = set_storage.storage, updated_at = now() WHERE x.id = m.id RETURNING * INTO m;
    RETURN vk.model_label(m);
END
$$;
COMMENT ON FUNCTION vk.set_storage(text, text) IS
    'Store a model version''s index and searches in vector (single precision) or halfvec (half precision: half the index size, up to 4,000 dimensions), before it has vectors in any collection. Returns the version''s label.';

-- Worker contract: a model version by id (registry lookups of the worker).
CREATE OR REPLACE FUNCTION vk.model_v1(model_id bigint) RETURNS vk.models
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (SELECT m FROM vk.models m WHERE m.id = model_id)
$$;
COMMENT ON FUNCTION vk.model_v1(bigint) IS 'Worker contract 1: the vk.models row of that id (NULL when none).';

-- Trust on first use: the first worker to load an encoder records its probe vector.
CREATE OR REPLACE FUNCTION vk.record_fingerprint_v1(model_id bigint, fingerprint vector) RETURNS void
LANGUAGE sql AS $$
    UPDATE vk.models SET fingerprint = record_fingerprint_v1.fingerprint, updated_at = now()
    WHERE id = record_fingerprint_v1.model_id AND vk.models.fingerprint IS NULL;
$$;
COMMENT ON FUNCTION vk.record_fingerprint_v1(bigint, vector) IS
    'Worker contract 1: record the vector of vk.probe_text() as the version''s fingerprint, unless one is recorded.';

-- The next version of a model name, for an encoder that exists outside the
-- database (a Hugging Face name or local path) or a pretrained inverter.
CREATE OR REPLACE FUNCTION vk.register_model_v1(
    model_name text, kind text, dim integer, distance text, params jsonb, fingerprint vector
) RETURNS vk.models
LANGUAGE sql AS $$
    -- INSERT ... SELECT: Citus refuses a subquery in VALUES (an aggregate gives its one row with no version yet).
    INSERT INTO vk.models (name, version, kind, dim, distance, params, fingerprint)
    SELECT model_name, coalesce(max(x.version), 0) + 1, register_model_v1.kind, register_model_v1.dim,
           register_model_v1.distance, coalesce(register_model_v1.params, '{}'), register_model_v1.fingerprint
    FROM vk.models x WHERE x.name = model_name
    RETURNING *;
$$;
COMMENT ON FUNCTION vk.register_model_v1(text, text, integer, text, jsonb, vector) IS
    'Worker contract 1: add the next version of model_name (an encoder or inverter loaded outside the database), with its fingerprint.';
