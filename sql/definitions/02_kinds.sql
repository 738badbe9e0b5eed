-- Model kinds: roles and job parameters, checked against vk.model_kinds (the
-- table vectorkeep/db/kinds.py fills at every upgrade) when a job is queued,
-- so that a typo fails at once instead of inside the job, or never.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

CREATE OR REPLACE FUNCTION vk._kind(kind_name text) RETURNS vk.model_kinds
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k vk.model_kinds;
BEGIN
    SELECT * INTO k FROM vk.model_kinds x WHERE x.kind = kind_name;
    IF k.kind IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: unknown model kind %', coalesce(quote_literal(kind_name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Kinds: ' || (SELECT string_agg(format('%s (%s)', x.kind, x.role), ', ' ORDER BY x.role, x.kind)
                                       FROM vk.model_kinds x) || '. See SELECT * FROM vk.model_kinds.';
    END IF;
    RETURN k;
END
$$;
COMMENT ON FUNCTION vk._kind(text) IS 'Internal: the vk.model_kinds row of a kind; unknown kinds raise with the list.';

CREATE OR REPLACE FUNCTION vk._kind_role(kind text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.role FROM vk.model_kinds k WHERE k.kind = _kind_role.kind
$$;
COMMENT ON FUNCTION vk._kind_role(text) IS
    'Internal: the role of a kind (vk.model_role of a version of it), for queries that read vk.models by columns (Citus passes no whole row of its tables to a function).';

CREATE OR REPLACE FUNCTION vk.model_role(m vk.models) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT vk._kind_role(m.kind)
$$;
COMMENT ON FUNCTION vk.model_role(vk.models) IS
    'A version''s role from its kind: encoder, inverter, map, next-vector or vectors (adopted). SELECT vk.model_label(m), vk.model_role(m) FROM vk.models m.';

-- Raises unless m's role is one of roles; doing says what was attempted.
CREATE OR REPLACE FUNCTION vk._require_role(m vk.models, roles text[], doing text) RETURNS vk.models
LANGUAGE plpgsql STABLE AS $$
DECLARE
    role text := vk.model_role(m);
BEGIN
    IF role IS NULL OR NOT role = ANY (roles) THEN
        RAISE EXCEPTION 'vectorkeep: % is a % model (role %), not %: it cannot %', vk.model_label(m), m.kind,
                coalesce(role, 'unknown'), array_to_string(roles, ' or '), doing
            USING ERRCODE = 'wrong_object_type',
                  HINT = CASE role
                      WHEN 'inverter' THEN 'An inverter turns vectors into text: use it with vk.recover_adopted.'
                      WHEN 'map' THEN 'A map places vectors: activate it with vk.activate(collection, model).'
                      WHEN 'next-vector' THEN 'A next-vector model predicts vectors: activate it with vk.activate, use it with vk.predict_next.'
                      WHEN 'vectors' THEN 'Adopted vectors have no encoder here: search them, or recover their text with vk.recover_adopted.'
                      ELSE '' END
                      || ' Encoders: ' || coalesce((SELECT string_agg(x.name || '@' || x.version, ', ' ORDER BY x.name, x.version)
                                                   FROM vk.models x JOIN vk.model_kinds k ON k.kind = x.kind
                                                   WHERE k.role = 'encoder' AND k.loadable AND x.status IN ('active', 'ready')),
                                                  'none') || '.';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION vk._require_role(vk.models, text[], text) IS
    'Internal: the version itself when its kind''s role is one of roles; raises otherwise, saying what the version is for.';

-- One parameter as a line of help: epochs (integer 1..1000, default 15).
CREATE OR REPLACE FUNCTION vk._param_help(name text, spec jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN name || ' (' || CASE WHEN spec ? 'choices'
                            THEN (SELECT string_agg(c #>> '{}', '|') FROM jsonb_array_elements(spec -> 'choices') c)
                            ELSE (spec ->> 'type') || coalesce(' ' || coalesce(spec ->> 'min', '') || '..' || coalesce(spec ->> 'max', ''), '')
                       END
            || coalesce(', default ' || (spec -> 'default')::text, '') || ')';
COMMENT ON FUNCTION vk._param_help(text, jsonb) IS 'Internal: a parameter of vk.model_kinds.params as a line of help.';

CREATE OR REPLACE FUNCTION vk._params_help(k vk.model_kinds) RETURNS text
LANGUAGE sql STABLE
RETURN format('%s: %s. Its parameters: %s. See SELECT * FROM vk.model_kinds WHERE kind = %L.', k.kind, k.description,
              coalesce((SELECT string_agg(vk._param_help(p.key, p.value), ', ' ORDER BY p.key)
                        FROM jsonb_each(k.params) p), 'none'), k.kind);
COMMENT ON FUNCTION vk._params_help(vk.model_kinds) IS 'Internal: a kind''s parameters, for the hint of a refused one.';

-- Raises unless value fits the parameter's spec (type, bounds, choices; a
-- model parameter names a usable version of an allowed role and kind).
CREATE OR REPLACE FUNCTION vk._check_param(k vk.model_kinds, name text, spec jsonb, given jsonb) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    kind_of  text := spec ->> 'type';
    json     text := jsonb_typeof(given);
    wanted   text;
    item     jsonb;
    n        numeric;
    m        vk.models;
    gate     record;
BEGIN
    wanted := CASE
        WHEN kind_of = 'integer' AND json = 'number' AND (given #>> '{}')::numeric = trunc((given #>> '{}')::numeric) THEN NULL
        WHEN kind_of = 'integer' THEN 'an integer'
        WHEN kind_of = 'number' AND json = 'number' THEN NULL
        WHEN kind_of = 'number' THEN 'a number'
        WHEN kind_of IN ('string', 'model') AND json = 'string' THEN NULL
        WHEN kind_of IN ('string', 'model') THEN 'a string'
        WHEN kind_of = 'boolean' AND json = 'boolean' THEN NULL
        WHEN kind_of = 'boolean' THEN 'true or false'
        WHEN kind_of = 'object' AND json = 'object' THEN NULL
        WHEN kind_of = 'object' THEN 'a JSON object'
        WHEN kind_of = 'gates' AND json = 'object' THEN NULL
        WHEN kind_of = 'gates' THEN 'a JSON object of gates, e.g. {"agreement@10": 0.5}'
        WHEN kind_of = 'integers' AND json = 'array' AND jsonb_array_length(given) > 0
             AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(given) x
                             WHERE jsonb_typeof(x) <> 'number' OR (x #>> '{}')::numeric <> trunc((x #>> '{}')::numeric)) THEN NULL
        WHEN kind_of = 'integers' THEN 'a non-empty list of integers, e.g. [256, 128]'
    END;
    IF wanted IS NOT NULL THEN
        RAISE EXCEPTION 'vectorkeep: parameter "%" of % must be %, not %', name, k.kind, wanted, given
            USING ERRCODE = 'invalid_parameter_value', HINT = vk._param_help(name, spec) || ': ' || (spec ->> 'help') || '.';
    END IF;
    IF spec ? 'choices' AND NOT spec -> 'choices' @> jsonb_build_array(given) THEN
        RAISE EXCEPTION 'vectorkeep: parameter "%" of % must be one of %, not %', name, k.kind,
                (SELECT string_agg(c::text, ', ') FROM jsonb_array_elements(spec -> 'choices') c), given
            USING ERRCODE = 'invalid_parameter_value', HINT = vk._param_help(name, spec) || ': ' || (spec ->> 'help') || '.';
    END IF;
    FOR item IN SELECT x FROM jsonb_array_elements(CASE json WHEN 'array' THEN given ELSE jsonb_build_array(given) END) x LOOP
        CONTINUE WHEN jsonb_typeof(item) <> 'number';
        n := (item #>> '{}')::numeric;
        IF n < (spec ->> 'min')::numeric OR n > (spec ->> 'max')::numeric THEN
            RAISE EXCEPTION 'vectorkeep: parameter "%" of % must be between % and %, not %', name, k.kind,
                    spec ->> 'min', spec ->> 'max', item
                USING ERRCODE = 'invalid_parameter_value', HINT = vk._param_help(name, spec) || ': ' || (spec ->> 'help') || '.';
        END IF;
    END LOOP;
    IF kind_of = 'model' THEN
        m := vk._require_usable(vk.model(given #>> '{}'));
        IF NOT spec -> 'roles' ? vk.model_role(m) OR (spec ? 'kinds' AND NOT spec -> 'kinds' ? m.kind) THEN
            RAISE EXCEPTION 'vectorkeep: parameter "%" of % must name %, and % is a % model', name, k.kind,
                    coalesce((SELECT string_agg(x #>> '{}', ' or ') FROM jsonb_array_elements(spec -> 'kinds') x),
                             'an ' || (SELECT string_agg(x #>> '{}', ' or ') FROM jsonb_array_elements(spec -> 'roles') x)),
                    vk.model_label(m), m.kind
                USING ERRCODE = 'wrong_object_type', HINT = (spec ->> 'help') || '.';
        END IF;
    END IF;
    IF kind_of = 'gates' THEN
        FOR gate IN SELECT key, value FROM jsonb_each(given) LOOP
            IF NOT (jsonb_typeof(gate.value) = 'number'
                    OR (jsonb_typeof(gate.value) = 'object' AND gate.value - 'min' - 'max' = '{}'
                        AND NOT EXISTS (SELECT 1 FROM jsonb_each(gate.value) b WHERE jsonb_typeof(b.value) <> 'number'))) THEN
                RAISE EXCEPTION 'vectorkeep: gate "%" of parameter "%" must be a minimum or {"min": a, "max": b}, not %',
                        gate.key, name, gate.value
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'e.g. {"agreement@10": 0.5, "distance_spread": 0.05}';
            END IF;
        END LOOP;
    END IF;
END
$$;
COMMENT ON FUNCTION vk._check_param(vk.model_kinds, text, jsonb, jsonb) IS
    'Internal: raises unless a job parameter fits its spec in vk.model_kinds (type, bounds, choices, role of a named model).';

-- The parameters a train job of that kind will use: the given ones checked,
-- every default filled in. Recorded on the job.
CREATE OR REPLACE FUNCTION vk._train_params(kind text, params jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k      vk.model_kinds := vk._kind(kind);
    p      record;
    filled jsonb := '{}';
BEGIN
    IF NOT k.trainable THEN
        RAISE EXCEPTION 'vectorkeep: cannot train a model of kind % (%): it is registered, not trained here', k.kind, k.role
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Trainable kinds: ' || (SELECT string_agg(x.kind, ', ' ORDER BY x.kind) FROM vk.model_kinds x WHERE x.trainable)
                      || '. Register encoders such as sentence-transformers with `vectorkeep models register`.';
    END IF;
    IF params IS NOT NULL AND jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'vectorkeep: the parameters must be a JSON object, not %', params
            USING ERRCODE = 'invalid_parameter_value', HINT = vk._params_help(k);
    END IF;
    FOR p IN SELECT key FROM jsonb_each(coalesce(params, '{}')) WHERE NOT k.params ? key LOOP
        RAISE EXCEPTION 'vectorkeep: % has no parameter "%"', k.kind, p.key
            USING ERRCODE = 'invalid_parameter_value', HINT = vk._params_help(k);
    END LOOP;
    FOR p IN SELECT key, value FROM jsonb_each(k.params) LOOP
        IF coalesce(params -> p.key, 'null') = 'null' THEN
            filled := filled || coalesce(jsonb_build_object(p.key, p.value -> 'default'), '{}');
        ELSE
            PERFORM vk._check_param(k, p.key, p.value, params -> p.key);
            filled := filled || jsonb_build_object(p.key, params -> p.key);
        END IF;
    END LOOP;
    RETURN jsonb_strip_nulls(filled);
END
$$;
COMMENT ON FUNCTION vk._train_params(text, jsonb) IS
    'Internal: a train job''s parameters, checked against its kind (unknown names, types, bounds, choices, the role of named models) with every default filled in; raises naming the parameter and what it allows.';
