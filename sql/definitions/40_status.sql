-- vk.status: per collection and model, where every row stands.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

-- The counts read the table through the author's text function (its rights,
-- not the owner's). An expression that raises leaves the counts it needs
-- NULL and says why in error: one collection never makes vk.status fail.
CREATE OR REPLACE FUNCTION vk._collection_stats(c_id bigint, m_id bigint)
RETURNS TABLE (rows bigint, empty bigint, embedded bigint, stale bigint, pending bigint, failed bigint,
               dead bigint, chunks bigint, error text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    t_rows  bigint;
    t_empty bigint;
    t_stale bigint;
    matched bigint;
    problem text;
BEGIN
    BEGIN
        -- A row counts once (its chunk 0); every chunk of a row carries the hash
        -- of the row's text, so chunk 0 tells whether the row's vectors are current.
        EXECUTE format(
            'SELECT count(*), count(*) FILTER (WHERE coalesce(t.body, '''') !~ ''[^[:space:]]''), '
            '       count(e.pk) FILTER (WHERE e.text_sha256 IS DISTINCT FROM sha256(convert_to(t.body, ''UTF8''))), '
            '       count(e.pk) '
            'FROM vk_expr.%I(NULL, NULL) t '
            'LEFT JOIN vk.embeddings e ON e.collection_id = $1 AND e.model_id = $2 AND e.chunk = 0 AND e.pk = t.pk',
            'texts_c' || c_id)
            INTO t_rows, t_empty, t_stale, matched USING c_id, m_id;
        -- Vectors whose row is gone are stale too.
        t_stale := t_stale + (SELECT count(*) FROM vk.embeddings e
                              WHERE e.collection_id = c_id AND e.model_id = m_id AND e.chunk = 0) - matched;
    EXCEPTION WHEN OTHERS THEN
        problem := 'text expression: ' || SQLERRM;
    END;
    RETURN QUERY
    SELECT t_rows, t_empty,
           (SELECT count(*) FROM vk.embeddings e WHERE e.collection_id = c_id AND e.model_id = m_id AND e.chunk = 0),
           t_stale,
           count(*) FILTER (WHERE NOT q.dead AND q.attempts = 0),
           count(*) FILTER (WHERE NOT q.dead AND q.attempts > 0),
           count(*) FILTER (WHERE q.dead),
           (SELECT count(*) FROM vk.embeddings e WHERE e.collection_id = c_id AND e.model_id = m_id),
           coalesce(problem, min(q.last_error) FILTER (WHERE q.dead))
    FROM vk.queue q WHERE q.collection_id = c_id AND q.model_id = m_id;
END
$$;
COMMENT ON FUNCTION vk._collection_stats(bigint, bigint) IS
    'Internal: the counts of vk.status for one (collection, model), the text read with its author''s rights; NULL counts and the error when the expression raises.';

-- Only the collections whose table the reader may SELECT.
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
       c.chunking->>'method'       AS chunking,
       s.error,
       m.storage,
       vk._index_state(c.id, m)    AS index
FROM vk.collections c
JOIN vk.collection_models cm ON cm.collection_id = c.id
JOIN vk.models m ON m.id = cm.model_id
CROSS JOIN LATERAL vk._collection_stats(c.id, m.id) s
WHERE has_table_privilege(c.source, 'SELECT');
COMMENT ON VIEW vk.status IS
    'Per collection and model, for the collections whose table you may SELECT: rows, embedded (rows with vectors), pending (queued), failed (retrying), dead (gave up), empty (NULL or blank text, nothing to embed), stale (text changed since its vectors), chunks (vectors: one a row unless chunked), the chunking method, error (a dead row''s error, or why the counts could not be read), storage (vector or halfvec) and index: valid, deferred (a backfill writes the vectors first; its job builds the index), building, or exact (too many dimensions for HNSW).';
