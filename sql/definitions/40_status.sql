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
    t_pk    text[];
    t_sha   bytea[];
    matched bigint;
    problem text;
BEGIN
    BEGIN
        -- The texts first, by their hashes, then the vectors: on Citus a query
        -- joining the two would run the text function on the shards, where it
        -- may not read the (distributed) table.
        EXECUTE format(
            'SELECT count(*), count(*) FILTER (WHERE coalesce(t.body, '''') !~ ''[^[:space:]]''), '
            '       array_agg(t.pk), array_agg(sha256(convert_to(t.body, ''UTF8''))) '
            'FROM vk_expr.%I(NULL, NULL) t', 'texts_c' || c_id)
            INTO t_rows, t_empty, t_pk, t_sha;
        -- A row counts once (its chunk 0); every chunk of a row carries the hash
        -- of the row's text, so chunk 0 tells whether the row's vectors are current.
        SELECT count(e.pk) FILTER (WHERE e.text_sha256 IS DISTINCT FROM t.sha), count(e.pk)
        INTO t_stale, matched
        FROM unnest(t_pk, t_sha) AS t(pk, sha)
        JOIN vk.embeddings e ON e.collection_id = c_id AND e.model_id = m_id AND e.chunk = 0 AND e.pk = t.pk;
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

-- Only the collections whose table the reader may SELECT. One statement per
-- (collection, model), run where the caller is: on Citus a single query
-- joining the small tables with the counts would be sent whole to a worker
-- node, which has neither the source tables nor their text functions. A
-- caller's function (not its owner's): has_table_privilege asks about the
-- caller.
CREATE OR REPLACE FUNCTION vk._status()
RETURNS TABLE (collection text, model text, is_default boolean, rows bigint, embedded bigint, pending bigint,
               failed bigint, dead bigint, empty bigint, stale bigint, last_embedded_at timestamptz,
               chunks bigint, chunking text, error text, storage text, index text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c    vk.collections;
    m    vk.models;
    c_id bigint;
    m_id bigint;
BEGIN
    -- Ids, then rows: a whole row of a Citus table read in a query has its
    -- shard's type, which no vk function takes.
    FOR c_id, m_id IN SELECT cm.collection_id, cm.model_id FROM vk.collection_models cm ORDER BY 1, 2 LOOP
        SELECT * INTO c FROM vk.collections x WHERE x.id = c_id;
        SELECT * INTO m FROM vk.models y WHERE y.id = m_id;
        CONTINUE WHEN NOT has_table_privilege(c.source, 'SELECT');
        RETURN QUERY
        SELECT c.name, vk.model_label(m), m.id = c.default_model_id,
               s.rows, s.embedded, s.pending, s.failed, s.dead, s.empty, s.stale,
               (SELECT max(e.computed_at) FROM vk.embeddings e WHERE e.collection_id = c.id AND e.model_id = m.id),
               s.chunks, c.chunking->>'method', s.error, m.storage, vk._index_state(c.id, m)
        FROM vk._collection_stats(c.id, m.id) s;
    END LOOP;
END
$$;
COMMENT ON FUNCTION vk._status() IS 'Internal: the rows of vk.status, for the caller.';

CREATE OR REPLACE VIEW vk.status AS
SELECT collection, model, is_default, rows, embedded, pending, failed, dead, empty, stale, last_embedded_at,
       chunks, chunking, error, storage, index
FROM vk._status();
COMMENT ON VIEW vk.status IS
    'Per collection and model, for the collections whose table you may SELECT: rows, embedded (rows with vectors), pending (queued), failed (retrying), dead (gave up), empty (NULL or blank text, nothing to embed), stale (text changed since its vectors), chunks (vectors: one a row unless chunked), the chunking method, error (a dead row''s error, or why the counts could not be read), storage (vector or halfvec) and index: valid, deferred (a backfill writes the vectors first; its job builds the index), building, or exact (too many dimensions for HNSW).';
