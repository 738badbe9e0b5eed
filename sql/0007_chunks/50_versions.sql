-- Activation counts rows, not chunks.
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.

-- Rows with text, rows whose vectors for (c, m) match their current text (by
-- chunk 0: all chunks of a row are written together, from one text), and
-- queue rows still to do for (c, m).
CREATE OR REPLACE FUNCTION vk.coverage_v1(c vk.collections, m vk.models)
RETURNS TABLE (texts bigint, current bigint, queued bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT count(*) FILTER (WHERE cur.body ~ ''[^[:space:]]''), '
        '       count(e.pk) FILTER (WHERE e.text_sha256 = sha256(convert_to(cur.body, ''UTF8''))), '
        '       (SELECT count(*) FROM vk.queue q WHERE q.collection_id = $1 AND q.model_id = $2) '
        'FROM (SELECT s.%1$I::text AS key, (%2$s)::text AS body FROM %3$s s) cur '
        'LEFT JOIN vk.embeddings e ON e.collection_id = $1 AND e.model_id = $2 AND e.pk = cur.key AND e.chunk = 0',
        c.pk_column, c.text_expression, c.source)
        USING c.id, m.id;
END
$$;
