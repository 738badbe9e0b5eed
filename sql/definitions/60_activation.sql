-- Activation and retirement of model versions.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

-- Rows with text, rows whose vectors for (c, m) match their current text (by
-- chunk 0: all chunks of a row are written together, from one text), and
-- queue rows still to do for (c, m).
CREATE OR REPLACE FUNCTION vk._coverage(c vk.collections, m vk.models)
RETURNS TABLE (texts bigint, current bigint, queued bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT count(*) FILTER (WHERE cur.body ~ ''[^[:space:]]''), '
        '       count(e.pk) FILTER (WHERE e.text_sha256 = sha256(convert_to(cur.body, ''UTF8''))), '
        '       (SELECT count(*) FROM vk.queue q WHERE q.collection_id = $1 AND q.model_id = $2) '
        'FROM vk_expr.%I(NULL, NULL) cur '
        'LEFT JOIN vk.embeddings e ON e.collection_id = $1 AND e.model_id = $2 AND e.pk = cur.pk AND e.chunk = 0',
        'texts_c' || c.id)
        USING c.id, m.id;
END
$$;
COMMENT ON FUNCTION vk._coverage(vk.collections, vk.models) IS
    'Internal: rows with text, rows whose vectors of (collection, model) match their current text, and queue rows left; the text read with its author''s rights.';

-- Each gate is {"metric": minimum} or {"metric": {"min": a, "max": b}} (e.g.
-- {"latency_ms": {"max": 5}}); a metric the version lacks fails its gate.
CREATE OR REPLACE FUNCTION vk._check_gates(m vk.models, gates jsonb) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    gate   record;
    metric double precision;
    lo     double precision;
    hi     double precision;
BEGIN
    FOR gate IN SELECT key, value FROM jsonb_each(coalesce(gates, '{}')) LOOP
        metric := (m.metrics ->> gate.key)::double precision;
        IF metric IS NULL THEN
            RAISE EXCEPTION 'vectorkeep: % has no metric "%"', vk.model_label(m), gate.key
                USING ERRCODE = 'check_violation',
                      HINT = 'The active version stays. Its metrics: ' || m.metrics::text;
        END IF;
        lo := CASE jsonb_typeof(gate.value) WHEN 'object' THEN (gate.value ->> 'min')::double precision
                                            ELSE (gate.value #>> '{}')::double precision END;
        hi := CASE jsonb_typeof(gate.value) WHEN 'object' THEN (gate.value ->> 'max')::double precision END;
        IF metric < lo OR metric > hi THEN
            RAISE EXCEPTION 'vectorkeep: % fails its gate: % = % (wanted %)', vk.model_label(m), gate.key,
                    round(metric::numeric, 4), gate.value
                USING ERRCODE = 'check_violation',
                      HINT = 'The active version stays. Retrain, or change the gate. Its metrics: ' || m.metrics::text;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION vk._check_gates(vk.models, jsonb) IS
    'Internal: raises check_violation unless every gate ({"metric": min} or {"metric": {"min": a, "max": b}}) passes on the version''s metrics.';

-- An encoder becomes a collection's search default only when its vectors are
-- complete, its index is built and its gates pass; a map (umap) or a
-- next-vector model (lvm-*) becomes the collection's deployed one once its
-- gates pass (a next-vector model must also beat both baselines).
CREATE OR REPLACE FUNCTION vk.activate(collection text, model text, min_metrics jsonb DEFAULT '{}')
RETURNS vk.models
LANGUAGE plpgsql AS $$
DECLARE
    c      vk.collections := vk._collection(collection);
    m      vk.models := vk._require_usable(vk.model(model));
    serves text := CASE WHEN m.kind = 'umap' THEN 'map' WHEN m.kind LIKE 'lvm-%' THEN 'next-vector' END;
    cm     vk.collection_models;
    cov    record;
    old    bigint;
BEGIN
    IF serves IS NULL THEN
        SELECT * INTO cm FROM vk.collection_models x WHERE x.collection_id = c.id AND x.model_id = m.id;
        IF cm.collection_id IS NULL THEN
            RAISE EXCEPTION 'vectorkeep: % has no vectors for collection "%"', vk.model_label(m), c.name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = format('Run SELECT vk.reembed(%L, %L); and wait for the job.', c.name, vk.model_label(m));
        END IF;
        SELECT * INTO cov FROM vk._coverage(c, m);
        IF cov.current < cov.texts OR cov.queued > 0 THEN
            RAISE EXCEPTION 'vectorkeep: % is not complete for "%": % of % rows embedded, % queued',
                    vk.model_label(m), c.name, cov.current, cov.texts, cov.queued
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Wait for the reembed job and the workers (vectorkeep jobs, vectorkeep status).';
        END IF;
        IF m.dim <= 2000 AND NOT EXISTS (
            SELECT 1 FROM pg_index i JOIN pg_class ix ON ix.oid = i.indexrelid
            WHERE ix.relname = cm.index_name AND ix.relnamespace = 'vk'::regnamespace
              AND i.indisvalid AND i.indisready) THEN
            RAISE EXCEPTION 'vectorkeep: the index % of % is missing or not valid', cm.index_name, vk.model_label(m)
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        PERFORM vk._check_gates(m, min_metrics);
        old := c.default_model_id;
        UPDATE vk.collections SET default_model_id = m.id WHERE id = c.id;
        UPDATE vk.models SET status = 'active', updated_at = now() WHERE id = m.id;
        -- The previous default stays queryable as name@version; it is no longer
        -- active unless another collection searches with it.
        UPDATE vk.models x SET status = 'ready', updated_at = now()
        WHERE x.id = old AND old <> m.id AND x.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM vk.collections y WHERE y.default_model_id = old);
        RETURN vk.model(vk.model_label(m));
    END IF;
    IF (m.params ->> 'collection_id')::bigint IS DISTINCT FROM c.id THEN
        RAISE EXCEPTION 'vectorkeep: % was trained on another collection than "%"', vk.model_label(m), c.name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF serves = 'next-vector' AND NOT coalesce((m.metrics ->> 'val_margin_over_baseline')::double precision > 0, false) THEN
        RAISE EXCEPTION 'vectorkeep: % does not beat its baselines on held-out groups: cosine % against % (repeat the last vector) and % (mean of the context)',
                vk.model_label(m), m.metrics ->> 'val_cosine', m.metrics ->> 'val_baseline_last_cosine',
                m.metrics ->> 'val_baseline_mean_cosine'
            USING ERRCODE = 'check_violation',
                  HINT = 'The active version stays. Train longer, on more groups, or with another context size.';
    END IF;
    PERFORM vk._check_gates(m, m.params -> 'gates');
    PERFORM vk._check_gates(m, min_metrics);
    SELECT d.model_id INTO old FROM vk.deployments d WHERE d.collection_id = c.id AND d.role = serves;
    INSERT INTO vk.deployments (collection_id, role, model_id) VALUES (c.id, serves, m.id)
    ON CONFLICT ON CONSTRAINT deployments_pkey DO UPDATE SET model_id = EXCLUDED.model_id, activated_at = now();
    UPDATE vk.models SET status = 'active', updated_at = now() WHERE id = m.id;
    UPDATE vk.models x SET status = 'ready', updated_at = now()
    WHERE x.id = old AND old <> m.id AND x.status = 'active'
      AND NOT EXISTS (SELECT 1 FROM vk.deployments d WHERE d.model_id = old);
    RETURN vk.model(vk.model_label(m));
END
$$;
COMMENT ON FUNCTION vk.activate(text, text, jsonb) IS
    'Make a model version the collection''s search default (an encoder: vectors complete, index valid, gates pass), its map (umap) or its next-vector model (must beat both baselines). min_metrics: {"metric": minimum} or {"metric": {"min": a, "max": b}}.';

CREATE OR REPLACE FUNCTION vk.retire(model text, collection text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    m       vk.models := vk.model(model);
    c       vk.collections;
    removed bigint := 0;
    n       bigint;
    ix      name;
BEGIN
    FOR c IN SELECT x.* FROM vk.collections x JOIN vk.collection_models cm ON cm.collection_id = x.id
             WHERE cm.model_id = m.id AND (collection IS NULL OR x.name = collection) LOOP
        IF c.default_model_id = m.id THEN
            RAISE EXCEPTION 'vectorkeep: % is the search default of "%"', vk.model_label(m), c.name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Activate another version for that collection first.';
        END IF;
        DELETE FROM vk.queue q WHERE q.collection_id = c.id AND q.model_id = m.id;
        DELETE FROM vk.embeddings e WHERE e.collection_id = c.id AND e.model_id = m.id;
        GET DIAGNOSTICS n = ROW_COUNT;
        removed := removed + n;
        DELETE FROM vk.collection_models cm WHERE cm.collection_id = c.id AND cm.model_id = m.id
        RETURNING cm.index_name INTO ix;
        EXECUTE format('DROP INDEX IF EXISTS vk.%I', ix);
        EXECUTE format('DROP INDEX IF EXISTS vk.%I', vk._keyword_index_name(c.id, m.id));
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM vk.collection_models cm WHERE cm.model_id = m.id) THEN
        UPDATE vk.models SET status = 'retired', updated_at = now() WHERE id = m.id;
    END IF;
    RETURN removed;
END
$$;
COMMENT ON FUNCTION vk.retire(text, text) IS
    'Remove a model version''s vectors and index (from one collection, or all); once no collection keeps it, its status is retired. A collection''s search default cannot be retired.';
