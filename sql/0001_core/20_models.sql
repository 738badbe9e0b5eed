-- Model versions: naming, lookup and the guard on vectors written for them.
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.

CREATE OR REPLACE FUNCTION vk.probe_text() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'vectorkeep fingerprint probe: the quick brown fox jumps over the lazy dog, 1234567890.';
COMMENT ON FUNCTION vk.probe_text() IS
    'The fixed text whose vector is a model''s fingerprint (vk.models.fingerprint).';

CREATE OR REPLACE FUNCTION vk.model_label(m vk.models) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN m.name || '@' || m.version;

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
                  HINT = 'Registered models: ' || coalesce(
                      (SELECT string_agg(vk.model_label(x), ', ' ORDER BY x.name, x.version) FROM vk.models x),
                      'none') || '.';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION vk.model(text) IS
    'Resolve "name@version", or "name" (its active version, else its newest ready one), to a vk.models row; unknown models raise.';

CREATE OR REPLACE FUNCTION vk.require_usable(m vk.models) RETURNS vk.models
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF m.status NOT IN ('active', 'ready') THEN
        RAISE EXCEPTION 'vectorkeep: model % is not ready (status %)', vk.model_label(m), m.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Use a version whose status is ready or active.';
    END IF;
    RETURN m;
END
$$;

CREATE OR REPLACE FUNCTION vk.check_dimension(v vector, m vk.models) RETURNS void
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

-- Any writer (worker, job or a DBA by hand) is held to the model's dimension.
CREATE OR REPLACE FUNCTION vk.embeddings_check_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    m vk.models;
BEGIN
    SELECT * INTO m FROM vk.models WHERE id = NEW.model_id;
    PERFORM vk.check_dimension(NEW.embedding, m);
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER embeddings_check
    BEFORE INSERT OR UPDATE OF embedding, model_id ON vk.embeddings
    FOR EACH ROW EXECUTE FUNCTION vk.embeddings_check_v1();

CREATE OR REPLACE FUNCTION vk.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
