-- vec2text inverters are trained like the other kinds (vk.train).
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.

CREATE OR REPLACE FUNCTION vk.trainable_kinds() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['doc2vec', 'tfidf', 'tfidf-mlp', 'vec2text-inverter'];

-- Worker API: store one vec2text recovery.
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

-- Queue an evaluate job: recover held-out rows of a collection from their
-- vectors of `model` by each method (nearest other stored text, the baseline;
-- and vec2text when an inverter is named or known), and score them against
-- the real text.
CREATE OR REPLACE FUNCTION vk.evaluate_recovery(
    collection text, model text, inverter text DEFAULT NULL, params jsonb DEFAULT '{}'
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c   vk.collections := vk.collection(collection);
    m   vk.models := vk.collection_model(c, model);
    inv vk.models;
BEGIN
    IF inverter IS NOT NULL THEN
        inv := vk.inverter_for_v1(m, inverter);
        IF (inv.params ->> 'encoder_model_id')::bigint <> m.id AND NOT EXISTS (
            SELECT 1 FROM vk.compatible_models(m) e WHERE e.id = (inv.params ->> 'encoder_model_id')::bigint) THEN
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
