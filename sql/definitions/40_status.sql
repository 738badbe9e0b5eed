-- vk.status: per collection and model, where every row stands.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

CREATE OR REPLACE FUNCTION vk._collection_stats(c_id bigint, m_id bigint)
RETURNS TABLE (rows bigint, empty bigint, embedded bigint, stale bigint, pending bigint, failed bigint,
               dead bigint, chunks bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c vk.collections;
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = c_id;
    -- A row counts once (its chunk 0); every chunk of a row carries the hash of
    -- the row's text, so chunk 0 tells whether the row's vectors are current.
    RETURN QUERY EXECUTE format(
        'SELECT (SELECT count(*) FROM %2$s), '
        '       (SELECT count(*) FROM %2$s s WHERE coalesce((%1$s)::text, '''') !~ ''[^[:space:]]''), '
        '       (SELECT count(*) FROM vk.embeddings e WHERE e.collection_id = $1 AND e.model_id = $2 AND e.chunk = 0), '
        '       (SELECT count(*) FROM vk.embeddings e '
        '        LEFT JOIN (SELECT s.%3$I AS key, (%1$s)::text AS body FROM %2$s s) cur ON cur.key = e.pk::%4$s '
        '         WHERE e.collection_id = $1 AND e.model_id = $2 AND e.chunk = 0 '
        '           AND e.text_sha256 IS DISTINCT FROM sha256(convert_to(cur.body, ''UTF8''))), '
        '       count(*) FILTER (WHERE NOT q.dead AND q.attempts = 0), '
        '       count(*) FILTER (WHERE NOT q.dead AND q.attempts > 0), '
        '       count(*) FILTER (WHERE q.dead), '
        '       (SELECT count(*) FROM vk.embeddings e WHERE e.collection_id = $1 AND e.model_id = $2) '
        'FROM vk.queue q WHERE q.collection_id = $1 AND q.model_id = $2',
        c.text_expression, c.source, c.pk_column, c.pk_type)
        USING c_id, m_id;
END
$$;

COMMENT ON FUNCTION vk._collection_stats(bigint, bigint) IS
    'Internal: the counts of vk.status for one (collection, model), read from the source table as the owner.';

CREATE OR REPLACE VIEW vk.status AS
SELECT c.name                      AS collection,
       vk.model_label(m)           AS model,
       m.id = c.default_model_id   AS is_default,
       s.rows,
       s.embedded,
       s.pending,
       s.failed,
       s.dead,
       s.empty,
       s.stale,
       (SELECT max(e.computed_at) FROM vk.embeddings e
         WHERE e.collection_id = c.id AND e.model_id = m.id) AS last_embedded_at,
       s.chunks,
       c.chunking->>'method'       AS chunking
FROM vk.collections c
JOIN vk.collection_models cm ON cm.collection_id = c.id
JOIN vk.models m ON m.id = cm.model_id
CROSS JOIN LATERAL vk._collection_stats(c.id, m.id) s;
COMMENT ON VIEW vk.status IS
    'Per collection and model: rows, embedded (rows with vectors), pending (queued), failed (retrying), dead (gave up, see vk.queue.last_error), empty (NULL or blank text, nothing to embed), stale (text changed since its vectors), chunks (vectors: one a row unless chunked) and the chunking method.';
