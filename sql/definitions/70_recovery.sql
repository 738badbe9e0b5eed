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

-- Register a table's vectors as a new external model version, after checking
-- that the column holds vectors of one dimension. encoder: the registered
-- version that made them (e.g. 'minilm@1'), taken on the caller's word: its
-- fingerprint is copied, so recovery finds it and the versions of its space
-- (`vectorkeep adopt --encoder` proves it instead, by encoding the probe).
CREATE OR REPLACE FUNCTION vk.adopt(
    source regclass, pk_column text, vector_column text, model_name text, adopted_name text DEFAULT NULL,
    encoder text DEFAULT NULL
) RETURNS TABLE (name text, model text, vectors bigint, model_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    pk_type text;
    vec     record;
    dims    record;
    m_id    bigint;
    a       vk.adopted;
    enc     vk.models;
BEGIN
    IF encoder IS NOT NULL THEN
        enc := vk._require_usable(vk._require_role(vk.model(encoder), ARRAY['encoder'], 'have made adopted vectors'));
        IF enc.fingerprint IS NULL THEN
            RAISE EXCEPTION 'vectorkeep: % has no fingerprint yet, so nothing can be proven to share its space', vk.model_label(enc)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'A worker records it when it first loads the version (vectorkeep worker), then adopt again.';
        END IF;
    END IF;
    SELECT format_type(att.atttypid, att.atttypmod) INTO pk_type FROM pg_attribute att
    WHERE att.attrelid = source AND att.attname = pk_column AND att.attnum > 0 AND NOT att.attisdropped;
    IF pk_type IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: table % has no column "%"', source, pk_column USING ERRCODE = 'undefined_column';
    END IF;
    PERFORM vk._require_key(source, pk_column);
    SELECT * INTO a FROM vk.adopted x WHERE x.source = adopt.source;
    IF a.id IS NOT NULL THEN
        RAISE EXCEPTION 'vectorkeep: % is already adopted, as "%" (model %)', source, a.name,
                (SELECT x.name || '@' || x.version FROM vk.models x WHERE x.id = a.model_id)
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
    IF enc.dim <> dims.lo THEN
        RAISE EXCEPTION 'vectorkeep: % makes %-d vectors; column "%" of % holds %-d ones', vk.model_label(enc), enc.dim,
                vector_column, source, dims.lo
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Name the encoder that made them, or none.';
    END IF;
    INSERT INTO vk.models (name, version, kind, dim, distance, params, fingerprint)
    VALUES (model_name, coalesce((SELECT max(x.version) FROM vk.models x WHERE x.name = model_name), 0) + 1,
            'external', dims.lo, 'cosine',
            jsonb_build_object('adopted_from', source::text, 'vector_column', vector_column, 'rows', dims.n)
            || CASE WHEN enc.id IS NULL THEN '{}'
                    ELSE jsonb_build_object('encoder', vk.model_label(enc), 'encoder_vouched_by', current_user) END,
            enc.fingerprint)
    RETURNING id INTO m_id;
    INSERT INTO vk.adopted (name, source, pk_column, pk_type, vector_column, model_id)
    VALUES (coalesce(adopted_name, (SELECT relname FROM pg_class WHERE oid = source)), source, pk_column, pk_type,
            vector_column, m_id)
    RETURNING * INTO a;
    -- x.name || '@' || x.version: on Citus a whole row of a reference table is its shard's row type.
    RETURN QUERY SELECT a.name, (SELECT x.name || '@' || x.version FROM vk.models x WHERE x.id = m_id), dims.n, m_id;
END
$$;
COMMENT ON FUNCTION vk.adopt(regclass, text, text, text, text, text) IS
    'Adopt a legacy table of vectors without text: its vectors become a new external version of model_name (dimension checked); recover text for them with vk.recover_adopted. encoder: the registered version that made them (e.g. ''minilm@1''), taken on your word, so that recovery can search and re-embed with it. Returns the adopted name, its version (label and id) and the vectors counted.';

-- The versions whose vectors live in the same space as m's, proven by the
-- fingerprint (the vector of vk.probe_text() under each encoder).
CREATE OR REPLACE FUNCTION vk._compatible_models(m vk.models) RETURNS SETOF vk.models
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT x.* FROM vk.models x
    WHERE x.id <> m.id AND x.dim = m.dim AND x.fingerprint IS NOT NULL AND m.fingerprint IS NOT NULL
      AND x.status IN ('active', 'ready')
      AND 1 - (x.fingerprint <=> m.fingerprint) >= 0.999
    ORDER BY x.status = 'active' DESC, x.id DESC;
$$;
COMMENT ON FUNCTION vk._compatible_models(vk.models) IS
    'Internal: the ready versions proven by fingerprint to share m''s vector space.';

-- The recovery method of an inverter kind: its name without "-inverter"
-- (vec2text-inverter -> vec2text, edit-search -> edit-search).
CREATE OR REPLACE FUNCTION vk._inverter_method(kind text) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN regexp_replace(kind, '-inverter$', '');
COMMENT ON FUNCTION vk._inverter_method(text) IS
    'Internal: the recovery method name of an inverter kind (the kind without "-inverter"), as vk.recovered records it.';

-- The inverter to use for m's vectors: the one named, or the best ready one
-- (highest held-out cosine recorded at training, then newest) of the method
-- asked (any when NULL) trained for a version proven by fingerprint to share
-- m's space. Vectors of another encoder are refused.
CREATE OR REPLACE FUNCTION vk._inverter_for(m vk.models, reference text, method text) RETURNS vk.models
LANGUAGE plpgsql STABLE AS $$
DECLARE
    inv vk.models;
    enc vk.models;
BEGIN
    IF reference IS NOT NULL THEN
        inv := vk._require_usable(vk._require_role(vk.model(reference), ARRAY['inverter'], 'turn vectors into text'));
        IF method IS NOT NULL AND vk._inverter_method(inv.kind) <> method THEN
            RAISE EXCEPTION 'vectorkeep: % recovers text by %, not by %', vk.model_label(inv), vk._inverter_method(inv.kind), method
                USING ERRCODE = 'invalid_parameter_value', HINT = format('Use method => %L.', vk._inverter_method(inv.kind));
        END IF;
    ELSE
        SELECT i.* INTO inv FROM vk.models i
        WHERE vk._kind_role(i.kind) = 'inverter' AND i.status IN ('ready', 'active')
          AND (method IS NULL OR vk._inverter_method(i.kind) = method)
          AND (i.params ->> 'encoder_model_id')::bigint IN (SELECT e.id FROM vk._compatible_models(m) e
                                                            UNION ALL SELECT m.id)
        ORDER BY (i.metrics ->> 'inversion_mean_cosine')::float8 DESC NULLS LAST, i.id DESC LIMIT 1;
        IF inv.id IS NULL THEN
            RAISE EXCEPTION 'vectorkeep: no % inverter is known for the encoder of %', coalesce(method, 'ready'), vk.model_label(m)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Adopt with --encoder so its fingerprint is known, and train an inverter for that '
                          || 'encoder: SELECT vk.train(''inverter'', ''edit-search'', ''{"encoder": "minilm@1"}'');';
        END IF;
    END IF;
    SELECT * INTO enc FROM vk.models e WHERE e.id = (inv.params ->> 'encoder_model_id')::bigint;
    IF m.id <> enc.id AND m.fingerprint IS NOT NULL AND enc.fingerprint IS NOT NULL
       AND 1 - (enc.fingerprint <=> m.fingerprint) < 0.999 THEN
        RAISE EXCEPTION 'vectorkeep: % inverts vectors of %, and % was made by another encoder (fingerprints differ)',
                vk.model_label(inv), vk.model_label(enc), vk.model_label(m)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An inverter only reads vectors of the encoder it was trained for (or one proven identical by fingerprint).';
    END IF;
    RETURN inv;
END
$$;
COMMENT ON FUNCTION vk._inverter_for(vk.models, text, text) IS
    'Internal: the inverter for m''s vectors, the one named or the best ready one (of that method) trained for an encoder of the same space.';

-- Queue a recover job for an adopted table. Methods: best (the default):
-- the best ready inverter for the vectors' encoder when there is one, beside
-- the nearest stored text, vector by vector; nearest: the nearest stored
-- text among the collections embedded with the reference version (named, or
-- proven compatible by fingerprint); an inverter's method (edit-search,
-- vec2text): that inverter (named, or the best ready one), beside the nearest
-- stored text. vk.recovered keeps every method's text with its cosine;
-- vk.recovered_text gives the better one of each row.
CREATE OR REPLACE FUNCTION vk.recover_adopted(
    adopted_name text, method text DEFAULT 'best', reference text DEFAULT NULL, params jsonb DEFAULT '{}'
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    a       vk.adopted := vk._adopted(adopted_name);
    m       vk.models;
    ref     vk.models;
    methods text[] := ARRAY['best', 'nearest']
                      || ARRAY(SELECT vk._inverter_method(k.kind) FROM vk.model_kinds k WHERE k.role = 'inverter' ORDER BY 1);
BEGIN
    SELECT * INTO m FROM vk.models WHERE id = a.model_id;
    IF method IS NULL OR NOT method = ANY (methods) THEN
        RAISE EXCEPTION 'vectorkeep: unknown recovery method "%"', method
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Methods: ' || array_to_string(methods, ', ') || '.';
    END IF;
    IF method NOT IN ('best', 'nearest') THEN
        ref := vk._inverter_for(m, reference, method);
    ELSIF reference IS NOT NULL THEN
        ref := vk._require_usable(vk.model(reference));
    ELSE
        -- best searches and re-embeds with an encoder; nearest can use any version of the space
        SELECT * INTO ref FROM vk._compatible_models(m) x
        ORDER BY method = 'best' AND vk.model_role(x) = 'encoder' DESC LIMIT 1;
        IF ref.id IS NULL THEN
            RAISE EXCEPTION 'vectorkeep: no model version is known to share the space of % (adopted "%")',
                    vk.model_label(m), a.name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = format('Name the version that made them: SELECT vk.recover_adopted(%L, reference => ''minilm@1''); '
                                    '(or adopt with encoder => ''minilm@1'', or vectorkeep adopt --encoder, which proves it).', a.name);
        END IF;
    END IF;
    IF ref.dim <> m.dim THEN
        RAISE EXCEPTION 'vectorkeep: % has % dimensions, the adopted vectors (%) have %',
                vk.model_label(ref), ref.dim, vk.model_label(m), m.dim
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF method IN ('best', 'nearest') AND m.fingerprint IS NOT NULL AND ref.fingerprint IS NOT NULL
       AND 1 - (ref.fingerprint <=> m.fingerprint) < 0.999 THEN
        RAISE EXCEPTION 'vectorkeep: % is not the encoder of % (their fingerprints differ)', vk.model_label(ref), vk.model_label(m)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN vk.submit_job_v1('recover', jsonb_build_object('adopted', a.name, 'method', method,
                            'reference_model_id', ref.id, 'params', coalesce(params, '{}')), NULL, m.id);
END
$$;
COMMENT ON FUNCTION vk.recover_adopted(text, text, text, jsonb) IS
    'Queue a recover job writing text for every row of an adopted table into vk.recovered. method best (default): the best ready inverter for the encoder beside the nearest stored text, the better kept per row; nearest; or an inverter''s method (edit-search, vec2text). Read the result with vk.recovered_text. Returns the job id.';

-- The recovered text of each row of an adopted table: of every method tried,
-- the one whose text, re-embedded, is closest to the row's vector (a generated
-- text must beat the nearest stored one by more than float noise).
CREATE OR REPLACE FUNCTION vk.recovered_text(adopted_name text)
RETURNS TABLE (pk text, body text, method text, model text, similarity double precision, alternatives jsonb)
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT DISTINCT ON (r.pk) r.pk, r.body, r.method, x.name || '@' || x.version, r.similarity,
           (SELECT coalesce(jsonb_agg(jsonb_build_object('method', o.method, 'similarity', o.similarity, 'body', o.body)
                                      ORDER BY o.similarity DESC), '[]')
            FROM vk.recovered o
            WHERE o.adopted_id = r.adopted_id AND o.pk = r.pk AND o.method <> r.method)
    FROM vk.recovered r
    JOIN vk.adopted a ON a.id = r.adopted_id
    LEFT JOIN vk.models x ON x.id = r.reference_model_id
    WHERE a.name = recovered_text.adopted_name AND r.body IS NOT NULL
    -- the recover job marks the text it chose (details.best); rows of older jobs: the closest
    ORDER BY r.pk, coalesce((r.details ->> 'best')::boolean, false) DESC, r.similarity DESC NULLS LAST,
             r.method = 'nearest' DESC;
$$;
COMMENT ON FUNCTION vk.recovered_text(text) IS
    'The recovered text of each row of an adopted table: the text its recover job chose (the inverter''s only where it re-embeds closer to the row''s vector than the nearest stored text), with its method, model version and the other methods'' texts.';

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
    SELECT x.name || '@' || x.version INTO ref FROM vk.models x WHERE x.id = reference_model_id;
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
        '        reference_model_id = EXCLUDED.reference_model_id, job_id = EXCLUDED.job_id, recovered_at = EXCLUDED.recovered_at '
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
        job_id = EXCLUDED.job_id, details = EXCLUDED.details, recovered_at = EXCLUDED.recovered_at;
$$;
COMMENT ON FUNCTION vk.put_recovered_v1(bigint, text, text, double precision, bigint, bigint, bigint, jsonb) IS
    'Worker contract 1 (workers before 0013): store one vec2text recovery with its provenance; newer workers use vk.put_recovered_v2.';

-- Worker contract: store one recovered text, by any method, with its provenance.
CREATE OR REPLACE FUNCTION vk.put_recovered_v2(
    adopted_id bigint, pk text, method text, body text, similarity double precision, model_id bigint,
    reference_model_id bigint, source_collection text, source_pk text, job bigint, details jsonb
) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO vk.recovered AS r (adopted_id, pk, method, body, similarity, model_id, reference_model_id,
                                   source_collection, source_pk, job_id, details)
    VALUES (adopted_id, pk, method, body, similarity, model_id, reference_model_id, source_collection, source_pk,
            job, details)
    ON CONFLICT (adopted_id, pk, method) DO UPDATE
    SET body = EXCLUDED.body, similarity = EXCLUDED.similarity, reference_model_id = EXCLUDED.reference_model_id,
        source_collection = EXCLUDED.source_collection, source_pk = EXCLUDED.source_pk,
        job_id = EXCLUDED.job_id, details = EXCLUDED.details, recovered_at = EXCLUDED.recovered_at;
$$;
COMMENT ON FUNCTION vk.put_recovered_v2(bigint, text, text, text, double precision, bigint, bigint, text, text, bigint, jsonb) IS
    'Worker contract 1: store one recovered text (method nearest, or an inverter''s) with its cosine, its model version and, for a stored text, where it came from.';

-- Queue an evaluate job: recover held-out rows of a collection from their
-- vectors of `model` (their texts kept out of the reference) by the nearest
-- other stored text (the baseline), by an inverter (the one named, else the
-- best ready one for the encoder) and by best (the better of the two, vector
-- by vector, as recovery answers), and score each against the real text.
CREATE OR REPLACE FUNCTION vk.evaluate_recovery(
    collection text, model text, inverter text DEFAULT NULL, params jsonb DEFAULT '{}'
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c   vk.collections := vk._collection(collection);
    m   vk.models := vk._require_role(vk._collection_model(c, model), ARRAY['encoder'], 'have its text recovered and re-embedded');
    inv vk.models;
BEGIN
    IF inverter IS NOT NULL THEN
        inv := vk._inverter_for(m, inverter, NULL);
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
    'Queue an evaluate job scoring text recovery (exact match, token F1, BLEU, cosine, seconds per vector) on held-out rows whose text is kept out of the reference: nearest other stored text (the baseline), an inverter (named, or the best ready one), and best. Returns the job id.';

CREATE OR REPLACE FUNCTION vk.adopted_v1(adopted_name text) RETURNS vk.adopted
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (SELECT a FROM vk.adopted a WHERE a.name = adopted_name)
$$;
COMMENT ON FUNCTION vk.adopted_v1(text) IS 'Worker contract 1: the vk.adopted row of that name (NULL when none).';

CREATE OR REPLACE FUNCTION vk.recovered_summary_v1(adopted_id bigint, method text)
RETURNS TABLE (recovered bigint, mean_similarity double precision, without_text bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT count(*), avg(r.similarity), count(*) FILTER (WHERE r.body IS NULL)
    FROM vk.recovered r WHERE r.adopted_id = recovered_summary_v1.adopted_id AND r.method = recovered_summary_v1.method;
$$;
COMMENT ON FUNCTION vk.recovered_summary_v1(bigint, text) IS
    'Worker contract 1: how many rows of an adopted table a method recovered, their mean similarity, and how many found no text.';

CREATE OR REPLACE FUNCTION vk.inverters_v1(encoder_model_id bigint) RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT m.id FROM vk.models m
    WHERE vk._kind_role(m.kind) = 'inverter' AND m.status IN ('ready', 'active')
      AND (m.params ->> 'encoder_model_id')::bigint = encoder_model_id
    ORDER BY (m.metrics ->> 'inversion_mean_cosine')::float8 DESC NULLS LAST, m.id DESC;
$$;
COMMENT ON FUNCTION vk.inverters_v1(bigint) IS
    'Worker contract 1: the ready inverters (any kind) trained for an encoder version, best held-out cosine recorded at training first, then newest.';

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
