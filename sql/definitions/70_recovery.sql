-- Recovery: adopting a legacy table of vectors without text, recovering text
-- for its rows (nearest stored text, or a vec2text inverter), and scoring the
-- methods. vk.recover itself lives with search (30_search.sql).
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

CREATE OR REPLACE FUNCTION vk._adopted(adopted_name text) RETURNS vk.adopted
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a vk.adopted;
BEGIN
    SELECT * INTO a FROM vk.adopted x WHERE x.name = adopted_name;
    IF a.id IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: no adopted table "%"', adopted_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Adopted: ' || coalesce((SELECT string_agg(x.name, ', ' ORDER BY x.name) FROM vk.adopted x), 'none')
                      || '. Adopt one with vk.adopt(...).';
    END IF;
    RETURN a;
END
$$;
COMMENT ON FUNCTION vk._adopted(text) IS
    'Internal: the vk.adopted row of that name; unknown names raise.';

-- Register a table's vectors as a new external model version (no encoder),
-- after checking that the column holds vectors of one dimension.
CREATE OR REPLACE FUNCTION vk.adopt(
    source regclass, pk_column text, vector_column text, model_name text, adopted_name text DEFAULT NULL
) RETURNS vk.adopted
LANGUAGE plpgsql AS $$
DECLARE
    pk_type text;
    vec     record;
    dims    record;
    m_id    bigint;
    a       vk.adopted;
BEGIN
    SELECT format_type(att.atttypid, att.atttypmod) INTO pk_type FROM pg_attribute att
    WHERE att.attrelid = source AND att.attname = pk_column AND att.attnum > 0 AND NOT att.attisdropped;
    IF pk_type IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: table % has no column "%"', source, pk_column USING ERRCODE = 'undefined_column';
    END IF;
    PERFORM vk._require_key(source, pk_column);
    SELECT * INTO a FROM vk.adopted x WHERE x.source = adopt.source;
    IF a.id IS NOT NULL THEN
        RAISE EXCEPTION 'vectorkeep: % is already adopted, as "%" (model %)', source, a.name,
                (SELECT vk.model_label(x) FROM vk.models x WHERE x.id = a.model_id)
            USING ERRCODE = 'duplicate_object',
                  HINT = format('Recover its text with SELECT vk.recover_adopted(%L); its rows are read from the table as they are now.', a.name);
    END IF;
    IF EXISTS (SELECT 1 FROM vk.adopted x
               WHERE x.name = coalesce(adopted_name, (SELECT cl.relname FROM pg_class cl WHERE cl.oid = adopt.source))) THEN
        RAISE EXCEPTION 'vectorkeep: an adopted table is already named "%"',
                coalesce(adopted_name, (SELECT cl.relname FROM pg_class cl WHERE cl.oid = adopt.source))
            USING ERRCODE = 'duplicate_object', HINT = 'Pass adopted_name => ''another_name''.';
    END IF;
    SELECT att.atttypid, att.atttypmod INTO vec FROM pg_attribute att
    WHERE att.attrelid = source AND att.attname = vector_column AND att.attnum > 0 AND NOT att.attisdropped;
    IF vec.atttypid IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: table % has no column "%"', source, vector_column
            USING ERRCODE = 'undefined_column';
    END IF;
    IF vec.atttypid <> 'vector'::regtype THEN
        RAISE EXCEPTION 'vectorkeep: column "%" of % is %, not vector', vector_column, source, format_type(vec.atttypid, vec.atttypmod)
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Cast it into a vector column first (pgvector casts real[] and text like ''[1,2,3]'').';
    END IF;
    EXECUTE format('SELECT min(vector_dims(%1$I)) AS lo, max(vector_dims(%1$I)) AS hi, count(%1$I) AS n FROM %2$s',
                   vector_column, source) INTO dims;
    IF dims.n = 0 THEN
        RAISE EXCEPTION 'vectorkeep: column "%" of % holds no vector', vector_column, source
            USING ERRCODE = 'no_data_found';
    END IF;
    IF dims.lo <> dims.hi THEN
        RAISE EXCEPTION 'vectorkeep: column "%" of % mixes dimensions % to %: vectors of different encoders?',
                vector_column, source, dims.lo, dims.hi
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO vk.models (name, version, kind, dim, distance, params)
    VALUES (model_name, coalesce((SELECT max(x.version) FROM vk.models x WHERE x.name = model_name), 0) + 1,
            'external', dims.lo, 'cosine',
            jsonb_build_object('adopted_from', source::text, 'vector_column', vector_column, 'rows', dims.n))
    RETURNING id INTO m_id;
    INSERT INTO vk.adopted (name, source, pk_column, pk_type, vector_column, model_id)
    VALUES (coalesce(adopted_name, (SELECT relname FROM pg_class WHERE oid = source)), source, pk_column, pk_type,
            vector_column, m_id)
    RETURNING * INTO a;
    RETURN a;
END
$$;
COMMENT ON FUNCTION vk.adopt(regclass, text, text, text, text) IS
    'Adopt a legacy table of vectors without text: its vectors become a new external version of model_name (dimension checked); recover text for them with vk.recover_adopted.';

-- The versions whose vectors live in the same space as m's, proven by the
-- fingerprint (the vector of vk.probe_text() under each encoder).
CREATE OR REPLACE FUNCTION vk._compatible_models(m vk.models) RETURNS SETOF vk.models
LANGUAGE sql STABLE AS $$
    SELECT x.* FROM vk.models x
    WHERE x.id <> m.id AND x.dim = m.dim AND x.fingerprint IS NOT NULL AND m.fingerprint IS NOT NULL
      AND x.status IN ('active', 'ready')
      AND 1 - (x.fingerprint <=> m.fingerprint) >= 0.999
    ORDER BY x.status = 'active' DESC, x.id DESC;
$$;
COMMENT ON FUNCTION vk._compatible_models(vk.models) IS
    'Internal: the ready versions proven by fingerprint to share m''s vector space.';

-- The vec2text inverter to use for m's vectors: the one named, or the newest
-- one trained for a version proven (by fingerprint) to share m's space.
-- Vectors of another encoder are refused.
CREATE OR REPLACE FUNCTION vk._inverter_for(m vk.models, reference text) RETURNS vk.models
LANGUAGE plpgsql STABLE AS $$
DECLARE
    inv vk.models;
    enc vk.models;
BEGIN
    IF reference IS NOT NULL THEN
        inv := vk._require_usable(vk._require_role(vk.model(reference), ARRAY['inverter'], 'turn vectors into text'));
    ELSE
        SELECT i.* INTO inv FROM vk.models i
        WHERE vk.model_role(i) = 'inverter' AND i.status IN ('ready', 'active')
          AND (i.params ->> 'encoder_model_id')::bigint IN (SELECT e.id FROM vk._compatible_models(m) e)
        ORDER BY i.id DESC LIMIT 1;
        IF inv.id IS NULL THEN
            RAISE EXCEPTION 'vectorkeep: no vec2text inverter is known for the encoder of %', vk.model_label(m)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Adopt with --encoder so its fingerprint is known, and train an inverter for that '
                          || 'encoder: SELECT vk.train(''inverter'', ''vec2text-inverter'', ''{"encoder": "minilm@1"}'');';
        END IF;
    END IF;
    SELECT * INTO enc FROM vk.models e WHERE e.id = (inv.params ->> 'encoder_model_id')::bigint;
    IF m.fingerprint IS NOT NULL AND enc.fingerprint IS NOT NULL AND 1 - (enc.fingerprint <=> m.fingerprint) < 0.999 THEN
        RAISE EXCEPTION 'vectorkeep: % inverts vectors of %, and % was made by another encoder (fingerprints differ)',
                vk.model_label(inv), vk.model_label(enc), vk.model_label(m)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN inv;
END
$$;
COMMENT ON FUNCTION vk._inverter_for(vk.models, text) IS
    'Internal: the vec2text inverter for m''s vectors, the one named or the newest trained for an encoder of the same space.';

-- Queue a recover job for an adopted table. method nearest: the nearest
-- stored text among the collections embedded with the reference version
-- (named, or proven compatible by fingerprint); vec2text: a trained inverter
-- for that encoder generates the text (params: steps, beam_width,
-- max_seconds per vector).
CREATE OR REPLACE FUNCTION vk.recover_adopted(
    adopted_name text, method text DEFAULT 'nearest', reference text DEFAULT NULL, params jsonb DEFAULT '{}'
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    a   vk.adopted := vk._adopted(adopted_name);
    m   vk.models;
    ref vk.models;
BEGIN
    SELECT * INTO m FROM vk.models WHERE id = a.model_id;
    IF method IS NULL OR method NOT IN ('nearest', 'vec2text') THEN
        RAISE EXCEPTION 'vectorkeep: unknown recovery method "%"', method
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Methods: nearest, vec2text.';
    END IF;
    IF method = 'vec2text' THEN
        ref := vk._inverter_for(m, reference);
    ELSIF reference IS NOT NULL THEN
        ref := vk._require_usable(vk.model(reference));
    ELSE
        SELECT * INTO ref FROM vk._compatible_models(m) LIMIT 1;
        IF ref.id IS NULL THEN
            RAISE EXCEPTION 'vectorkeep: no model version is known to share the space of % (adopted "%")',
                    vk.model_label(m), a.name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Name the encoder when adopting (vectorkeep adopt --encoder) so its fingerprint proves it, or name a reference version.';
        END IF;
    END IF;
    IF ref.dim <> m.dim THEN
        RAISE EXCEPTION 'vectorkeep: % has % dimensions, the adopted vectors (%) have %',
                vk.model_label(ref), ref.dim, vk.model_label(m), m.dim
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF method = 'nearest' AND m.fingerprint IS NOT NULL AND ref.fingerprint IS NOT NULL
       AND 1 - (ref.fingerprint <=> m.fingerprint) < 0.999 THEN
        RAISE EXCEPTION 'vectorkeep: % is not the encoder of % (their fingerprints differ)', vk.model_label(ref), vk.model_label(m)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN vk.submit_job_v1('recover', jsonb_build_object('adopted', a.name, 'method', method,
                            'reference_model_id', ref.id, 'params', coalesce(params, '{}')), NULL, m.id);
END
$$;
COMMENT ON FUNCTION vk.recover_adopted(text, text, text, jsonb) IS
    'Queue a recover job writing text for every row of an adopted table into vk.recovered (method nearest: stored texts of a reference version in the same space; vec2text: a trained inverter for that encoder). Returns the job id.';

-- Worker contract: recover one keyset page of an adopted table by nearest stored
-- text, entirely in SQL (vk.recover over the HNSW indexes).
CREATE OR REPLACE FUNCTION vk.recover_nearest_page_v1(
    adopted_id bigint, after_key text, page_size integer, reference_model_id bigint, job bigint
) RETURNS TABLE (last_key text, recovered integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    a   vk.adopted;
    ref text;
BEGIN
    SELECT * INTO a FROM vk.adopted x WHERE x.id = adopted_id;
    SELECT vk.model_label(x) INTO ref FROM vk.models x WHERE x.id = reference_model_id;
    RETURN QUERY EXECUTE format(
        'WITH page AS ('
        '    SELECT s.%1$I AS key, s.%2$I AS v FROM %3$s s '
        '    WHERE ($1::text IS NULL OR s.%1$I > $1::%4$s) AND s.%2$I IS NOT NULL ORDER BY s.%1$I LIMIT $2), '
        'ins AS ('
        '    INSERT INTO vk.recovered AS r (adopted_id, pk, method, body, similarity, source_collection, source_pk, '
        '                                   model_id, reference_model_id, job_id) '
        '    SELECT $3, p.key::text, ''nearest'', n.body, n.similarity, n.collection, n.pk, $4, $5, $6 '
        '    FROM page p LEFT JOIN LATERAL vk.recover(p.v, $7, 1) n ON true '
        '    ON CONFLICT (adopted_id, pk, method) DO UPDATE SET body = EXCLUDED.body, similarity = EXCLUDED.similarity, '
        '        source_collection = EXCLUDED.source_collection, source_pk = EXCLUDED.source_pk, '
        '        reference_model_id = EXCLUDED.reference_model_id, job_id = EXCLUDED.job_id, recovered_at = now() '
        '    RETURNING 1) '
        'SELECT (SELECT p.key::text FROM page p ORDER BY p.key DESC LIMIT 1), (SELECT count(*) FROM ins)::integer',
        a.pk_column, a.vector_column, a.source, a.pk_type)
        USING after_key, page_size, a.id, a.model_id, reference_model_id, job, ref;
END
$$;
COMMENT ON FUNCTION vk.recover_nearest_page_v1(bigint, text, integer, bigint, bigint) IS
    'Worker contract 1: recover one keyset page of an adopted table by nearest stored text, in SQL; returns the page''s last key and the rows written.';

-- Worker contract: a page of an adopted table's vectors (for methods computed in Python).
CREATE OR REPLACE FUNCTION vk.adopted_page_v1(adopted_id bigint, after_key text, page_size integer)
RETURNS TABLE (pk text, embedding vector)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    a vk.adopted;
BEGIN
    SELECT * INTO a FROM vk.adopted x WHERE x.id = adopted_id;
    RETURN QUERY EXECUTE format(
        'SELECT s.%1$I::text, s.%2$I FROM %3$s s WHERE ($1::text IS NULL OR s.%1$I > $1::%4$s) '
        'AND s.%2$I IS NOT NULL ORDER BY s.%1$I LIMIT $2',
        a.pk_column, a.vector_column, a.source, a.pk_type)
        USING after_key, page_size;
END
$$;
COMMENT ON FUNCTION vk.adopted_page_v1(bigint, text, integer) IS
    'Worker contract 1: one keyset page of an adopted table''s vectors, for recovery methods computed by the worker.';

-- Worker contract: store one vec2text recovery.
CREATE OR REPLACE FUNCTION vk.put_recovered_v1(
    adopted_id bigint, pk text, body text, similarity double precision, model_id bigint,
    reference_model_id bigint, job bigint, details jsonb
) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO vk.recovered AS r (adopted_id, pk, method, body, similarity, model_id, reference_model_id, job_id, details)
    VALUES (adopted_id, pk, 'vec2text', body, similarity, model_id, reference_model_id, job, details)
    ON CONFLICT (adopted_id, pk, method) DO UPDATE
    SET body = EXCLUDED.body, similarity = EXCLUDED.similarity, reference_model_id = EXCLUDED.reference_model_id,
        job_id = EXCLUDED.job_id, details = EXCLUDED.details, recovered_at = now();
$$;
COMMENT ON FUNCTION vk.put_recovered_v1(bigint, text, text, double precision, bigint, bigint, bigint, jsonb) IS
    'Worker contract 1: store one vec2text recovery with its provenance.';

-- Queue an evaluate job: recover held-out rows of a collection from their
-- vectors of `model` by each method (nearest other stored text, the baseline;
-- and vec2text when an inverter is named or known), and score them against
-- the real text.
CREATE OR REPLACE FUNCTION vk.evaluate_recovery(
    collection text, model text, inverter text DEFAULT NULL, params jsonb DEFAULT '{}'
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c   vk.collections := vk._collection(collection);
    m   vk.models := vk._collection_model(c, model);
    inv vk.models;
BEGIN
    IF inverter IS NOT NULL THEN
        inv := vk._inverter_for(m, inverter);
        IF (inv.params ->> 'encoder_model_id')::bigint <> m.id AND NOT EXISTS (
            SELECT 1 FROM vk._compatible_models(m) e WHERE e.id = (inv.params ->> 'encoder_model_id')::bigint) THEN
            RAISE EXCEPTION 'vectorkeep: % was trained for another encoder than %', vk.model_label(inv), vk.model_label(m)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    RETURN vk.submit_job_v1('evaluate', jsonb_build_object('inverter_model_id', inv.id, 'params', coalesce(params, '{}')),
                            c.id, m.id);
END
$$;
COMMENT ON FUNCTION vk.evaluate_recovery(text, text, text, jsonb) IS
    'Queue an evaluate job scoring text recovery (exact match, token F1, BLEU, cosine) on held-out rows: nearest stored text as the baseline, and a vec2text inverter when named. Returns the job id.';

CREATE OR REPLACE FUNCTION vk.adopted_v1(adopted_name text) RETURNS vk.adopted
LANGUAGE sql STABLE
RETURN (SELECT a FROM vk.adopted a WHERE a.name = adopted_name);
COMMENT ON FUNCTION vk.adopted_v1(text) IS 'Worker contract 1: the vk.adopted row of that name (NULL when none).';

CREATE OR REPLACE FUNCTION vk.recovered_summary_v1(adopted_id bigint, method text)
RETURNS TABLE (recovered bigint, mean_similarity double precision, without_text bigint)
LANGUAGE sql STABLE AS $$
    SELECT count(*), avg(r.similarity), count(*) FILTER (WHERE r.body IS NULL)
    FROM vk.recovered r WHERE r.adopted_id = recovered_summary_v1.adopted_id AND r.method = recovered_summary_v1.method;
$$;
COMMENT ON FUNCTION vk.recovered_summary_v1(bigint, text) IS
    'Worker contract 1: how many rows of an adopted table a method recovered, their mean similarity, and how many found no text.';

CREATE OR REPLACE FUNCTION vk.inverters_v1(encoder_model_id bigint) RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
    SELECT m.id FROM vk.models m
    WHERE vk.model_role(m) = 'inverter' AND m.status IN ('ready', 'active')
      AND (m.params ->> 'encoder_model_id')::bigint = encoder_model_id
    ORDER BY m.id DESC;
$$;
COMMENT ON FUNCTION vk.inverters_v1(bigint) IS 'Worker contract 1: the vec2text inverters trained for an encoder version, newest first.';

-- The adopted vectors' encoder, named by the operator and loaded by the
-- worker: its fingerprint lets vk._compatible_models find versions in the same space.
CREATE OR REPLACE FUNCTION vk.set_encoder_v1(model text, encoder text, fingerprint vector) RETURNS void
LANGUAGE sql AS $$
    UPDATE vk.models
    SET fingerprint = set_encoder_v1.fingerprint, params = params || jsonb_build_object('encoder', encoder),
        updated_at = now()
    WHERE id = (vk.model(set_encoder_v1.model)).id;
$$;
COMMENT ON FUNCTION vk.set_encoder_v1(text, text, vector) IS
    'Worker contract 1: record which encoder made an adopted version''s vectors, with that encoder''s fingerprint.';
