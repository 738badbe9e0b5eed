-- Activation: a version becomes a collection's search default only when its
-- vectors are complete, its index is built and its gates pass. Retirement
-- removes a version's vectors and index.
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.

-- Rows with text, vectors of (c, m) matching the row's current text, and queue
-- rows still to do for (c, m).
CREATE OR REPLACE FUNCTION vk.coverage_v1(c vk.collections, m vk.models)
RETURNS TABLE (texts bigint, current bigint, queued bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT count(*) FILTER (WHERE cur.body ~ ''[^[:space:]]''), '
        '       count(e.pk) FILTER (WHERE e.text_sha256 = sha256(convert_to(cur.body, ''UTF8''))), '
        '       (SELECT count(*) FROM vk.queue q WHERE q.collection_id = $1 AND q.model_id = $2) '
        'FROM (SELECT s.%1$I::text AS key, (%2$s)::text AS body FROM %3$s s) cur '
        'LEFT JOIN vk.embeddings e ON e.collection_id = $1 AND e.model_id = $2 AND e.pk = cur.key',
        c.pk_column, c.text_expression, c.source)
        USING c.id, m.id;
END
$$;

CREATE OR REPLACE FUNCTION vk.activate(collection text, model text, min_metrics jsonb DEFAULT '{}')
RETURNS vk.models
LANGUAGE plpgsql AS $$
DECLARE
    c      vk.collections := vk.collection(collection);
    m      vk.models := vk.require_usable(vk.model(model));
    cm     vk.collection_models;
    cov    record;
    gate   record;
    metric double precision;
    old_id bigint;
BEGIN
    SELECT * INTO cm FROM vk.collection_models x WHERE x.collection_id = c.id AND x.model_id = m.id;
    IF cm.collection_id IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: % has no vectors for collection "%"', vk.model_label(m), c.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Run SELECT vk.reembed(%L, %L); and wait for the job.', c.name, vk.model_label(m));
    END IF;
    SELECT * INTO cov FROM vk.coverage_v1(c, m);
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
    FOR gate IN SELECT key, value FROM jsonb_each(coalesce(min_metrics, '{}')) LOOP
        metric := (m.metrics ->> gate.key)::double precision;
        IF metric IS NULL THEN
            RAISE EXCEPTION 'vectorkeep: % has no metric "%"', vk.model_label(m), gate.key
                USING ERRCODE = 'check_violation',
                      HINT = 'Its metrics: ' || m.metrics::text;
        END IF;
        IF metric < (gate.value #>> '{}')::double precision THEN
            RAISE EXCEPTION 'vectorkeep: % fails its gate: % = % is below %',
                    vk.model_label(m), gate.key, round(metric::numeric, 4), gate.value #>> '{}'
                USING ERRCODE = 'check_violation',
                      HINT = 'The previous default stays active. Retrain, or lower the gate.';
        END IF;
    END LOOP;

    old_id := c.default_model_id;
    UPDATE vk.collections SET default_model_id = m.id WHERE id = c.id;
    UPDATE vk.models SET status = 'active', updated_at = now() WHERE id = m.id;
    -- The previous default stays queryable as name@version; it is no longer
    -- active unless another collection searches with it.
    UPDATE vk.models x SET status = 'ready', updated_at = now()
    WHERE x.id = old_id AND old_id <> m.id AND x.status = 'active'
      AND NOT EXISTS (SELECT 1 FROM vk.collections y WHERE y.default_model_id = old_id);
    RETURN vk.model(vk.model_label(m));
END
$$;
COMMENT ON FUNCTION vk.activate(text, text, jsonb) IS
    'Make a model version the collection''s search default, refused unless its vectors are complete, its index valid and each gate in min_metrics (e.g. {"recall@10": 0.9}) passes.';

CREATE OR REPLACE FUNCTION vk.retire(model text, collection text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
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
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM vk.collection_models cm WHERE cm.model_id = m.id) THEN
        UPDATE vk.models SET status = 'retired', updated_at = now() WHERE id = m.id;
    END IF;
    RETURN removed;
END
$$;
COMMENT ON FUNCTION vk.retire(text, text) IS
    'Remove a model version''s vectors and index (from one collection, or all); once no collection keeps it, its status is retired. A collection''s search default cannot be retired.';
