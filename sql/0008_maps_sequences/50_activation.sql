-- Activation of maps and next-vector models: gates recorded on the version
-- and given at activation, enforced here; encoders go to vk.activate_v1.
-- idempotent: only CREATE OR REPLACE and grants; a later revision may re-apply this file.

-- Each gate is {"metric": minimum} or {"metric": {"min": a, "max": b}} (e.g.
-- {"latency_ms": {"max": 5}}); a metric the version lacks fails its gate.
CREATE OR REPLACE FUNCTION vk.check_gates_v1(m vk.models, gates jsonb) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    gate   record;
    metric double precision;
    lo     double precision;
    hi     double precision;
BEGIN
    FOR gate IN SELECT key, value FROM jsonb_each(coalesce(gates, '{}')) LOOP
        metric := (m.metrics ->> gate.key)::double precision;
        lo := CASE jsonb_typeof(gate.value) WHEN 'object' THEN (gate.value ->> 'min')::double precision
                                            ELSE (gate.value #>> '{}')::double precision END;
        hi := CASE jsonb_typeof(gate.value) WHEN 'object' THEN (gate.value ->> 'max')::double precision END;
        IF metric IS NULL OR metric < lo OR metric > hi THEN
            RAISE EXCEPTION 'vectorkeep: % fails its gate on %: % (wanted %)', vk.model_label(m), gate.key,
                    coalesce(round(metric::numeric, 4)::text, 'no such metric'), gate.value
                USING ERRCODE = 'check_violation',
                      HINT = 'The active version stays. Its metrics: ' || m.metrics::text;
        END IF;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION vk.activate(collection text, model text, min_metrics jsonb DEFAULT '{}')
RETURNS vk.models
LANGUAGE plpgsql AS $$
DECLARE
    c    vk.collections := vk.collection(collection);
    m    vk.models := vk.require_usable(vk.model(model));
    serves text := CASE WHEN m.kind = 'umap' THEN 'map' WHEN m.kind LIKE 'lvm-%' THEN 'next-vector' END;
    old  bigint;
BEGIN
    IF serves IS NULL THEN
        RETURN vk.activate_v1(collection, model, min_metrics);
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
    PERFORM vk.check_gates_v1(m, m.params -> 'gates');
    PERFORM vk.check_gates_v1(m, min_metrics);
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
REVOKE ALL ON FUNCTION vk.activate(text, text, jsonb), vk.check_gates_v1(vk.models, jsonb) FROM PUBLIC, vk_app;
GRANT EXECUTE ON FUNCTION vk.activate(text, text, jsonb), vk.check_gates_v1(vk.models, jsonb) TO vk_worker, vk_admin;
