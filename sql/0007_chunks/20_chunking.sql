-- Chunking settings: how a collection's rows are cut before embedding.
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.

-- Set a collection's chunking and queue every row again for every model
-- version (the worker re-cuts and replaces each row's chunks in one
-- transaction). size and overlap are in tokens of each version's tokenizer;
-- size NULL means the encoder's window.
CREATE OR REPLACE FUNCTION vk.set_chunking(
    collection_name text,
    method text,
    size integer DEFAULT NULL,
    overlap integer DEFAULT 0
) RETURNS vk.collections
LANGUAGE plpgsql AS $$
DECLARE
    c        vk.collections := vk.collection(collection_name);
    setting  jsonb;
    queued   bigint;
BEGIN
    IF method IS NULL OR method NOT IN ('none', 'tokens', 'sentences', 'markdown') THEN
        RAISE EXCEPTION 'vectorkeep: unknown chunking method %', coalesce(quote_literal(method), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use none, tokens, sentences or markdown.';
    END IF;
    IF size IS NOT NULL AND size < 1 OR overlap IS NULL OR overlap < 0 OR overlap >= coalesce(size, 2147483647) THEN
        RAISE EXCEPTION 'vectorkeep: chunk size % and overlap %: need size >= 1 and 0 <= overlap < size',
                coalesce(size::text, 'NULL'), coalesce(overlap::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    setting := jsonb_strip_nulls(jsonb_build_object('method', method, 'size', size, 'overlap', overlap));
    IF setting = c.chunking THEN
        RETURN c;
    END IF;
    UPDATE vk.collections x SET chunking = setting WHERE x.id = c.id RETURNING * INTO c;
    IF method = 'none' THEN
        -- Search reads one vector a row when unchunked: keep chunk 0 (stale,
        -- queued) until the worker writes the whole text's vector.
        DELETE FROM vk.embeddings e WHERE e.collection_id = c.id AND e.chunk > 0;
    END IF;
    EXECUTE format(
        'INSERT INTO vk.queue AS q (collection_id, pk, model_id) '
        'SELECT $1, s.%I::text, cm.model_id FROM %s s '
        'CROSS JOIN vk.collection_models cm WHERE cm.collection_id = $1 '
        'ON CONFLICT (collection_id, pk, model_id) DO UPDATE '
        'SET enqueued_at = now(), run_after = now(), attempts = 0, last_error = NULL, dead = false',
        c.pk_column, c.source)
        USING c.id;
    GET DIAGNOSTICS queued = ROW_COUNT;
    PERFORM vk.enqueued_v1(c.id, queued);
    RETURN c;
END
$$;
COMMENT ON FUNCTION vk.set_chunking(text, text, integer, integer) IS
    'Cut a collection''s rows before embedding: none, tokens (size, overlap), sentences (packed up to size) or markdown (headings, then sentences); every row is queued again.';
