-- Search over chunked collections returns each row once, by its best chunk;
-- vk.search_chunks returns the chunks themselves with their offsets.
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.

-- Nearest chunks of one (collection, model), the query its HNSW index serves;
-- $1 = query vector, and row_limit an expression for how many ($2: k).
CREATE OR REPLACE FUNCTION vk.knn_chunks_sql(c_id bigint, m vk.models, row_limit text DEFAULT '$2') RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format(
    'SELECT e.pk, e.chunk, e.start_char, coalesce(e.end_char, e.start_char + length(e.body)) AS end_char, e.body, '
    '       (e.embedding::vector(%1$s) %2$s $1::vector(%1$s))::float8 AS distance '
    'FROM vk.embeddings e WHERE e.collection_id = %3$s AND e.model_id = %4$s '
    'ORDER BY e.embedding::vector(%1$s) %2$s $1::vector(%1$s) LIMIT %5$s',
    m.dim, vk.operator(m.distance), c_id, m.id, row_limit);

-- How many chunks to read for k rows: rows with many chunks near the query
-- would otherwise leave fewer than k distinct rows.
CREATE OR REPLACE FUNCTION vk.chunks_for_rows(k integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN least(greatest(k * 10, 40), 1000);

-- Nearest rows ($1 = query vector, $2 = k): the plain index query for an
-- unchunked collection (one vector a row); for a chunked one, the nearest
-- chunks, each row once with its best chunk's text and distance.
CREATE OR REPLACE FUNCTION vk.knn_rows_sql(c vk.collections, m vk.models) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN c.chunking->>'method' = 'none' THEN vk.knn_sql(c.id, m)
ELSE
    'SELECT b.pk, b.body, b.distance FROM ('
    '  SELECT DISTINCT ON (n.pk) n.pk, n.body, n.distance '
    '  FROM (' || vk.knn_chunks_sql(c.id, m, 'vk.chunks_for_rows($2)') || ') n '
    '  ORDER BY n.pk, n.distance) b '
    'ORDER BY b.distance LIMIT $2'
END;

CREATE OR REPLACE FUNCTION vk.search(collection text, query vector, k integer DEFAULT 10, model text DEFAULT NULL)
RETURNS TABLE (pk text, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections := vk.collection(collection);
    m vk.models := vk.collection_model(c, model);
BEGIN
    PERFORM vk.check_dimension(query, m);
    PERFORM vk.check_k(k);
    PERFORM vk.widen_ef_search(CASE WHEN c.chunking->>'method' = 'none' THEN k ELSE vk.chunks_for_rows(k) END);
    RETURN QUERY EXECUTE vk.knn_rows_sql(c, m) USING query, k;
END
$$;
COMMENT ON FUNCTION vk.search(text, vector, integer, text) IS
    'The k rows of a collection nearest to a query vector (nearest first), by the collection''s default model or the one named ("name" or "name@version"). Uses the HNSW index. A chunked row comes once, with its best chunk''s text and distance (vk.search_chunks gives the chunks).';

CREATE OR REPLACE FUNCTION vk.search_chunks(
    collection text, query vector, k integer DEFAULT 10, model text DEFAULT NULL
) RETURNS TABLE (pk text, chunk integer, start_char integer, end_char integer, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections := vk.collection(collection);
    m vk.models := vk.collection_model(c, model);
BEGIN
    PERFORM vk.check_dimension(query, m);
    PERFORM vk.check_k(k);
    PERFORM vk.widen_ef_search(k);
    RETURN QUERY EXECUTE vk.knn_chunks_sql(c.id, m) USING query, k;
END
$$;
COMMENT ON FUNCTION vk.search_chunks(text, vector, integer, text) IS
    'The k chunks nearest to a query vector, with their row, position, character offsets into the row''s text (body = substr(text, start_char + 1, end_char - start_char)) and distance.';

CREATE OR REPLACE FUNCTION vk.similar(collection text, row_pk text, k integer DEFAULT 10, model text DEFAULT NULL)
RETURNS TABLE (pk text, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections := vk.collection(collection);
    m vk.models := vk.collection_model(c, model);
    v vector;
BEGIN
    PERFORM vk.check_k(k);
    -- A chunked row is represented by the mean of its chunks' vectors.
    SELECT avg(e.embedding) INTO v FROM vk.embeddings e
    WHERE e.collection_id = c.id AND e.pk = row_pk AND e.model_id = m.id;
    IF v IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: row % of collection "%" has no vector for model % yet', row_pk, c.name, vk.model_label(m)
            USING ERRCODE = 'no_data_found',
                  HINT = 'Check the key, or wait for a worker to embed it (SELECT * FROM vk.status).';
    END IF;
    PERFORM vk.widen_ef_search(CASE WHEN c.chunking->>'method' = 'none' THEN k + 1 ELSE vk.chunks_for_rows(k + 1) END);
    RETURN QUERY EXECUTE
        'SELECT r.pk, r.body, r.distance FROM (' || vk.knn_rows_sql(c, m) || ') r WHERE r.pk <> $3 LIMIT $4'
        USING v, k + 1, row_pk, k;
END
$$;

CREATE OR REPLACE FUNCTION vk.recover(query vector, model text, k integer DEFAULT 5, only_collection text DEFAULT NULL)
RETURNS TABLE (collection text, pk text, body text, similarity double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m   vk.models := vk.require_usable(vk.model(model));
    one vk.collections;
    c   vk.collections;
    sql text := '';
BEGIN
    PERFORM vk.check_dimension(query, m);
    PERFORM vk.check_k(k);
    IF only_collection IS NOT NULL THEN
        one := vk.collection(only_collection);
    END IF;
    FOR c IN SELECT x.* FROM vk.collections x JOIN vk.collection_models cm ON cm.collection_id = x.id
             WHERE cm.model_id = m.id AND (one.id IS NULL OR x.id = one.id) ORDER BY x.id LOOP
        sql := sql || CASE WHEN sql = '' THEN '' ELSE ' UNION ALL ' END
            || format('(SELECT %L::text AS collection, r.* FROM (%s) r)', c.name, vk.knn_rows_sql(c, m));
    END LOOP;
    IF sql = '' THEN
        RETURN;
    END IF;
    PERFORM vk.widen_ef_search(vk.chunks_for_rows(k));
    RETURN QUERY EXECUTE
        'SELECT u.collection, u.pk, u.body, vk.similarity(u.distance, $3) FROM (' || sql || ') u '
        'ORDER BY u.distance LIMIT $2'
        USING query, k, m.distance;
END
$$;
