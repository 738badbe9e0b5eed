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
DECLARE
    t_pk  text[];
    t_sha bytea[];
BEGIN
    -- The texts first, then the vectors (as vk._collection_stats: on Citus a
    -- query joining both would run the text function on the shards).
    EXECUTE format('SELECT array_agg(t.pk), array_agg(sha256(convert_to(t.body, ''UTF8''))) '
                   'FROM vk_expr.%I(NULL, NULL) t WHERE t.body ~ ''[^[:space:]]''', 'texts_c' || c.id)
        INTO t_pk, t_sha;
    RETURN QUERY
    SELECT coalesce(cardinality(t_pk), 0)::bigint,
           (SELECT count(*) FROM unnest(t_pk, t_sha) AS t(pk, sha)
            JOIN vk.embeddings e ON e.collection_id = c.id AND e.model_id = m.id AND e.chunk = 0
                                AND e.pk = t.pk AND e.text_sha256 = t.sha),
           (SELECT count(*) FROM vk.queue q WHERE q.collection_id = c.id AND q.model_id = m.id);
END
$$;
COMMENT ON FUNCTION vk._coverage(vk.collections, vk.models) IS
    'Internal: rows with text, rows whose vectors of (collection, model) match their current text, and queue rows left; the text read with its author''s rights.';

-- Hints show the figures, not per-epoch histories.
CREATE OR REPLACE FUNCTION vk._scalar_metrics(metrics jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
RETURN coalesce((SELECT jsonb_object_agg(key, value) FROM jsonb_each(metrics)
                 WHERE jsonb_typeof(value) IN ('number', 'string', 'boolean')), '{}');
COMMENT ON FUNCTION vk._scalar_metrics(jsonb) IS 'Internal: the numbers, strings and booleans of a metrics object (no histories).';

-- How spread out a version's vectors of a collection are: pairwise cosine
-- distances among up to 200 rows (a stable sample by key hash). A collapsed
-- space, every vector nearly the same, has a distance_spread (the 90th minus
-- the 10th percentile) near 0 whatever its recall looks like.
CREATE OR REPLACE FUNCTION vk._space_metrics(c vk.collections, m vk.models) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    WITH sample AS (
        SELECT row_number() OVER () AS i, s.embedding
        FROM (SELECT e.embedding FROM vk.embeddings e
              WHERE e.collection_id = c.id AND e.model_id = m.id AND e.chunk = 0
              ORDER BY md5(e.pk) LIMIT 200) s),
    pairs AS (SELECT a.embedding <=> b.embedding AS distance FROM sample a JOIN sample b ON a.i < b.i)
    SELECT jsonb_build_object(
        'distance_spread', round((percentile_cont(0.9) WITHIN GROUP (ORDER BY distance)
                                  - percentile_cont(0.1) WITHIN GROUP (ORDER BY distance))::numeric, 4),
        'mean_distance', round(avg(distance)::numeric, 4),
        'spread_rows', (SELECT count(*) FROM sample))
    FROM pairs;
$$;
COMMENT ON FUNCTION vk._space_metrics(vk.collections, vk.models) IS
    'Internal: distance_spread (90th - 10th percentile of pairwise cosine distances), mean_distance and spread_rows over a sample of the collection''s vectors of m: a collapsed space has a spread near 0.';

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
                      HINT = 'The active version stays. Its metrics: ' || vk._scalar_metrics(m.metrics)::text;
        END IF;
        lo := CASE jsonb_typeof(gate.value) WHEN 'object' THEN (gate.value ->> 'min')::double precision
                                            ELSE (gate.value #>> '{}')::double precision END;
        hi := CASE jsonb_typeof(gate.value) WHEN 'object' THEN (gate.value ->> 'max')::double precision END;
        IF metric < lo OR metric > hi THEN
            RAISE EXCEPTION 'vectorkeep: % fails its gate: % = % (wanted %)', vk.model_label(m), gate.key,
                    round(metric::numeric, 4), gate.value
                USING ERRCODE = 'check_violation',
                      HINT = 'The active version stays. Retrain, or change the gate. Its metrics: '
                          || vk._scalar_metrics(m.metrics)::text;
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
RETURNS TABLE (activated text, serves_as text, replaced text)
LANGUAGE plpgsql AS $$
DECLARE
    c      vk.collections := vk._collection(collection);
    m      vk.models := vk._require_usable(vk._require_role(vk.model(model), ARRAY['encoder', 'map', 'next-vector'],
                                                             format('be activated for "%s"', collection)));
    serves text := nullif(vk.model_role(m), 'encoder');
    space  jsonb;
    cm     vk.collection_models;
    cov    record;
    old    bigint;
BEGIN
    PERFORM vk._one_connection_per_node();
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
        IF vk._index_state(c.id, m) NOT IN ('valid', 'exact') THEN
            RAISE EXCEPTION 'vectorkeep: the indexes (HNSW, keyword) of % for "%" are %', vk.model_label(m), c.name, vk._index_state(c.id, m)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = format('Its reembed job builds them once the vectors are written (vectorkeep jobs); '
                                    'if no job is left, SELECT vk.reembed(%L, %L); builds them.', c.name, vk.model_label(m));
        END IF;
        space := vk._space_metrics(c, m);
        UPDATE vk.models x SET metrics = x.metrics || space WHERE x.id = m.id RETURNING * INTO m;
        -- A collapsed space is refused unless the caller sets its own distance_spread gate.
        PERFORM vk._check_gates(m, CASE WHEN (space ->> 'spread_rows')::integer >= 20
                                        THEN jsonb_build_object('distance_spread', 0.02) ELSE '{}' END
                                   || coalesce(min_metrics, '{}'));
        old := c.default_model_id;
        UPDATE vk.collections SET default_model_id = m.id WHERE id = c.id;
        UPDATE vk.models SET status = 'active', updated_at = now() WHERE id = m.id;
        -- The previous default stays queryable as name@version; it is no longer
        -- active unless another collection searches with it.
        UPDATE vk.models x SET status = 'ready', updated_at = now()
        WHERE x.id = old AND old <> m.id AND x.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM vk.collections y WHERE y.default_model_id = old);
        -- p.name || '@' || p.version: on Citus a whole row of a reference table is its shard's row type.
        RETURN QUERY SELECT vk.model_label(m), 'search'::text, (SELECT p.name || '@' || p.version FROM vk.models p WHERE p.id = old);
        RETURN;
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
    ON CONFLICT ON CONSTRAINT deployments_pkey DO UPDATE SET model_id = EXCLUDED.model_id, activated_at = EXCLUDED.activated_at;
    UPDATE vk.models SET status = 'active', updated_at = now() WHERE id = m.id;
    UPDATE vk.models x SET status = 'ready', updated_at = now()
    WHERE x.id = old AND old <> m.id AND x.status = 'active'
      AND NOT EXISTS (SELECT 1 FROM vk.deployments d WHERE d.model_id = old);
    RETURN QUERY SELECT vk.model_label(m), serves, (SELECT p.name || '@' || p.version FROM vk.models p WHERE p.id = old);
END
$$;
COMMENT ON FUNCTION vk.activate(text, text, jsonb) IS
    'Make a model version the collection''s search default (an encoder: vectors complete, index valid, gates pass, and a space that has not collapsed: distance_spread >= 0.02 unless min_metrics sets its own), its map (umap) or its next-vector model (must beat both baselines). min_metrics: {"metric": minimum} or {"metric": {"min": a, "max": b}}, e.g. {"agreement@10": 0.5}. Returns the version activated, what it serves (search, map or next-vector) and the version it replaced.';

-- Retiring from one collection removes the version's vectors and indexes
-- there and changes nothing else (its status included: other collections,
-- inverters and text queries may use it); retiring everywhere (collection
-- NULL) also marks it retired. A retired encoder comes back with vk.reembed.
CREATE OR REPLACE FUNCTION vk.retire(model text, collection text DEFAULT NULL, confirm boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp
    SET client_min_messages = warning AS $$
DECLARE
    m        vk.models := vk.model(model);
    c        vk.collections;
    removed  bigint := 0;
    n        bigint;
    ix       name;
    searched text;
BEGIN
    PERFORM vk._one_connection_per_node();
    IF collection IS NOT NULL THEN
        c := vk._collection(collection);
        IF NOT EXISTS (SELECT 1 FROM vk.collection_models cm WHERE cm.collection_id = c.id AND cm.model_id = m.id) THEN
            RAISE EXCEPTION 'vectorkeep: % has no vectors in "%" to retire', vk.model_label(m), c.name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = CASE WHEN vk.model_role(m) = 'encoder'
                                  THEN 'Nothing to do there. Collections embedded with it: ' || coalesce(
                                      (SELECT string_agg(x.name, ', ') FROM vk.collections x
                                       JOIN vk.collection_models cm ON cm.collection_id = x.id WHERE cm.model_id = m.id), 'none')
                                  ELSE format('A %s model keeps no vectors in a collection. To stop using it everywhere: SELECT vk.retire(%L);',
                                              vk.model_role(m), vk.model_label(m)) END;
        END IF;
    ELSIF EXISTS (SELECT 1 FROM vk.deployments d WHERE d.model_id = m.id) THEN
        RAISE EXCEPTION 'vectorkeep: % is the deployed % of "%"', vk.model_label(m), vk.model_role(m),
                (SELECT x.name FROM vk.deployments d JOIN vk.collections x ON x.id = d.collection_id WHERE d.model_id = m.id LIMIT 1)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Activate another version for that collection first.';
    END IF;
    SELECT x.name INTO searched FROM vk.collections x
    WHERE x.default_model_id = m.id AND (collection IS NULL OR x.name = collection) ORDER BY x.name LIMIT 1;
    IF searched IS NOT NULL THEN
        RAISE EXCEPTION 'vectorkeep: % is the search default of "%"', vk.model_label(m), searched
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Activate another version for that collection first.';
    END IF;
    -- Vectors come back only by re-embedding every row: said first, done only when confirmed.
    IF NOT coalesce(confirm, false) THEN
        SELECT count(*) INTO n FROM vk.embeddings e
        WHERE e.model_id = m.id AND (collection IS NULL OR e.collection_id = c.id);
        IF n > 0 THEN
            RAISE EXCEPTION 'vectorkeep: retiring % deletes its % vectors in %; only re-embedding every row brings them back',
                    vk.model_label(m), n, CASE WHEN collection IS NULL THEN 'every collection' ELSE format('"%s"', c.name) END
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = format('If that is what you want: SELECT vk.retire(%L%s, confirm => true);', vk.model_label(m),
                                    CASE WHEN collection IS NULL THEN '' ELSE format(', %L', c.name) END);
        END IF;
    END IF;
    FOR c IN SELECT x.* FROM vk.collections x JOIN vk.collection_models cm ON cm.collection_id = x.id
             WHERE cm.model_id = m.id AND (collection IS NULL OR x.name = collection) LOOP
        DELETE FROM vk.queue q WHERE q.collection_id = c.id AND q.model_id = m.id;
        DELETE FROM vk.embeddings e WHERE e.collection_id = c.id AND e.model_id = m.id;
        GET DIAGNOSTICS n = ROW_COUNT;
        PERFORM vk._forget_coordinates_of(c.id, NULL, m.id);
        removed := removed + n;
        DELETE FROM vk.collection_models cm WHERE cm.collection_id = c.id AND cm.model_id = m.id
        RETURNING cm.index_name INTO ix;
        EXECUTE format('DROP INDEX IF EXISTS vk.%I', ix);
        EXECUTE format('DROP INDEX IF EXISTS vk.%I', vk._keyword_index_name(c.id, m.id));
    END LOOP;
    IF collection IS NULL THEN
        UPDATE vk.models SET status = 'retired', updated_at = now() WHERE id = m.id;
    END IF;
    RETURN removed;
END
$$;
COMMENT ON FUNCTION vk.retire(text, text, boolean) IS
    'Remove a model version''s vectors and indexes from one collection (nothing else changes, its status included), or from every collection and mark it retired (collection NULL; vk.reembed(collection, ''name@N'') brings it back). A search default or a deployed map or next-vector model cannot be retired. Returns the vectors removed. A version with vectors there is retired only with confirm => true.';
