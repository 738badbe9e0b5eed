-- Similarity search and recovery by nearest stored text: the stable SQL API.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.
--
-- Every query is built so that it matches the partial HNSW index of its
-- (collection, model): the same cast expression, the ids as literals (a
-- parameter would hide the index predicate from the planner), the model's own
-- distance operator. A vector is only compared with vectors of its own model.

--
CREATE OR REPLACE FUNCTION vk._knn_sql(c_id bigint, m vk.models) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format(
    'SELECT e.pk, e.body, (e.embedding::vector(%1$s) %2$s $1::vector(%1$s))::float8 AS distance '
    'FROM vk.embeddings e WHERE e.collection_id = %3$s AND e.model_id = %4$s '
    'ORDER BY e.embedding::vector(%1$s) %2$s $1::vector(%1$s) LIMIT $2',
    m.dim, vk._operator(m.distance), c_id, m.id);
COMMENT ON FUNCTION vk._knn_sql(bigint, vk.models) IS
    'Internal: the nearest-neighbour query over one (collection, model) that its HNSW index serves; $1 = query vector, $2 = k.';

-- Nearest chunks of one (collection, model), the query its HNSW index serves;
-- $1 = query vector, and row_limit an expression for how many ($2: k).
CREATE OR REPLACE FUNCTION vk._knn_chunks_sql(c_id bigint, m vk.models, row_limit text DEFAULT '$2') RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format(
    'SELECT e.pk, e.chunk, e.start_char, coalesce(e.end_char, e.start_char + length(e.body)) AS end_char, e.body, '
    '       (e.embedding::vector(%1$s) %2$s $1::vector(%1$s))::float8 AS distance '
    'FROM vk.embeddings e WHERE e.collection_id = %3$s AND e.model_id = %4$s '
    'ORDER BY e.embedding::vector(%1$s) %2$s $1::vector(%1$s) LIMIT %5$s',
    m.dim, vk._operator(m.distance), c_id, m.id, row_limit);
COMMENT ON FUNCTION vk._knn_chunks_sql(bigint, vk.models, text) IS
    'Internal: the nearest-chunks query over one (collection, model) that its HNSW index serves; $1 = query vector.';

-- How many chunks to read for k rows: rows with many chunks near the query
-- would otherwise leave fewer than k distinct rows.
CREATE OR REPLACE FUNCTION vk._chunks_for_rows(k integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN least(greatest(k * 10, 40), 1000);
COMMENT ON FUNCTION vk._chunks_for_rows(integer) IS 'Internal: how many chunks to read for k distinct rows.';

-- Nearest rows ($1 = query vector, $2 = k): the plain index query for an
-- unchunked collection (one vector a row); for a chunked one, the nearest
-- chunks, each row once with its best chunk's text and distance.
CREATE OR REPLACE FUNCTION vk._knn_rows_sql(c vk.collections, m vk.models) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN c.chunking->>'method' = 'none' THEN vk._knn_sql(c.id, m)
ELSE
    'SELECT b.pk, b.body, b.distance FROM ('
    '  SELECT DISTINCT ON (n.pk) n.pk, n.body, n.distance '
    '  FROM (' || vk._knn_chunks_sql(c.id, m, 'vk._chunks_for_rows($2)') || ') n '
    '  ORDER BY n.pk, n.distance) b '
    'ORDER BY b.distance LIMIT $2'
END;
COMMENT ON FUNCTION vk._knn_rows_sql(vk.collections, vk.models) IS
    'Internal: the nearest-rows query of a collection (each chunked row once, by its best chunk); $1 = query vector, $2 = k.';

-- HNSW returns at most hnsw.ef_search rows: widen it for large k, for this
-- transaction only, never narrowing what the session chose.
CREATE OR REPLACE FUNCTION vk._widen_ef_search(k integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF k > coalesce(nullif(current_setting('hnsw.ef_search', true), '')::integer, 40) THEN
        PERFORM set_config('hnsw.ef_search', least(k, 1000)::text, true);
    END IF;
END
$$;
COMMENT ON FUNCTION vk._widen_ef_search(integer) IS
    'Internal: raise hnsw.ef_search to k for this transaction (HNSW returns at most ef_search rows).';

CREATE OR REPLACE FUNCTION vk._check_k(k integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'vectorkeep: k must be between 1 and 1000, not %', coalesce(k::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION vk._check_k(integer) IS 'Internal: raises unless 1 <= k <= 1000.';

-- similarity: 1 - cosine distance for cosine models, the inner product for
-- ip models, minus the L2 distance for l2 models; larger is nearer.
CREATE OR REPLACE FUNCTION vk._similarity(distance double precision, metric text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE metric WHEN 'cosine' THEN 1 - distance ELSE -distance END;
COMMENT ON FUNCTION vk._similarity(double precision, text) IS 'Internal: a distance as a similarity (larger is nearer).';

-- Reading follows the source table: a collection's vectors and text are for
-- the roles that may SELECT its table (row-level security on vk's tables
-- filters the same way, 98_row_security.sql).
CREATE OR REPLACE FUNCTION vk._readable(c vk.collections) RETURNS vk.collections
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT has_table_privilege(c.source, 'SELECT') THEN
        RAISE EXCEPTION 'vectorkeep: permission denied for collection "%": % may not SELECT %', c.name, current_user, c.source
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('Its vectors and text are copies of %s: GRANT SELECT ON %s TO the role that searches.',
                                c.source, c.source);
    END IF;
    RETURN c;
END
$$;
COMMENT ON FUNCTION vk._readable(vk.collections) IS
    'Internal: the collection itself when the caller may SELECT its source table; raises insufficient_privilege otherwise.';

CREATE OR REPLACE FUNCTION vk.search(collection text, query vector, k integer DEFAULT 10, model text DEFAULT NULL)
RETURNS TABLE (pk text, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections := vk._readable(vk._collection(collection));
    m vk.models := vk._collection_model(c, model);
BEGIN
    PERFORM vk._check_dimension(query, m);
    PERFORM vk._check_k(k);
    PERFORM vk._widen_ef_search(CASE WHEN c.chunking->>'method' = 'none' THEN k ELSE vk._chunks_for_rows(k) END);
    RETURN QUERY EXECUTE vk._knn_rows_sql(c, m) USING query, k;
END
$$;
COMMENT ON FUNCTION vk.search(text, vector, integer, text) IS
    'The k rows of a collection nearest to a query vector (nearest first), by the collection''s default model or the one named ("name" or "name@version"). Uses the HNSW index. A chunked row comes once, with its best chunk''s text and distance (vk.search_chunks gives the chunks).';

CREATE OR REPLACE FUNCTION vk.search_chunks(
    collection text, query vector, k integer DEFAULT 10, model text DEFAULT NULL
) RETURNS TABLE (pk text, chunk integer, start_char integer, end_char integer, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections := vk._readable(vk._collection(collection));
    m vk.models := vk._collection_model(c, model);
BEGIN
    PERFORM vk._check_dimension(query, m);
    PERFORM vk._check_k(k);
    PERFORM vk._widen_ef_search(k);
    RETURN QUERY EXECUTE vk._knn_chunks_sql(c.id, m) USING query, k;
END
$$;
COMMENT ON FUNCTION vk.search_chunks(text, vector, integer, text) IS
    'The k chunks nearest to a query vector, with their row, position, character offsets into the row''s text (body = substr(text, start_char + 1, end_char - start_char)) and distance.';

CREATE OR REPLACE FUNCTION vk.similar(collection text, row_pk text, k integer DEFAULT 10, model text DEFAULT NULL)
RETURNS TABLE (pk text, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections := vk._readable(vk._collection(collection));
    m vk.models := vk._collection_model(c, model);
    v vector;
BEGIN
    PERFORM vk._check_k(k);
    -- A chunked row is represented by the mean of its chunks' vectors.
    SELECT avg(e.embedding) INTO v FROM vk.embeddings e
    WHERE e.collection_id = c.id AND e.pk = row_pk AND e.model_id = m.id;
    IF v IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: row % of collection "%" has no vector for model % yet', row_pk, c.name, vk.model_label(m)
            USING ERRCODE = 'no_data_found',
                  HINT = 'Check the key, or wait for a worker to embed it (SELECT * FROM vk.status).';
    END IF;
    PERFORM vk._widen_ef_search(CASE WHEN c.chunking->>'method' = 'none' THEN k + 1 ELSE vk._chunks_for_rows(k + 1) END);
    RETURN QUERY EXECUTE
        'SELECT r.pk, r.body, r.distance FROM (' || vk._knn_rows_sql(c, m) || ') r WHERE r.pk <> $3 LIMIT $4'
        USING v, k + 1, row_pk, k;
END
$$;
COMMENT ON FUNCTION vk.similar(text, text, integer, text) IS
    'The k rows most similar to an existing row of the collection (itself excluded), by its stored vector (the mean of its chunks'' vectors when chunked).';

CREATE OR REPLACE FUNCTION vk.recover(query vector, model text, k integer DEFAULT 5, only_collection text DEFAULT NULL)
RETURNS TABLE (collection text, pk text, body text, similarity double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m   vk.models := vk._require_usable(vk.model(model));
    one vk.collections;
    c   vk.collections;
    sql text := '';
BEGIN
    PERFORM vk._check_dimension(query, m);
    PERFORM vk._check_k(k);
    IF only_collection IS NOT NULL THEN
        one := vk._collection(only_collection);
    END IF;
    FOR c IN SELECT x.* FROM vk.collections x JOIN vk.collection_models cm ON cm.collection_id = x.id
             WHERE cm.model_id = m.id AND (one.id IS NULL OR x.id = one.id) ORDER BY x.id LOOP
        sql := sql || CASE WHEN sql = '' THEN '' ELSE ' UNION ALL ' END
            || format('(SELECT %L::text AS collection, r.* FROM (%s) r)', c.name, vk._knn_rows_sql(c, m));
    END LOOP;
    IF sql = '' THEN
        RETURN;
    END IF;
    PERFORM vk._widen_ef_search(vk._chunks_for_rows(k));
    RETURN QUERY EXECUTE
        'SELECT u.collection, u.pk, u.body, vk._similarity(u.distance, $3) FROM (' || sql || ') u '
        'ORDER BY u.distance LIMIT $2'
        USING query, k, m.distance;
END
$$;
COMMENT ON FUNCTION vk.recover(vector, text, integer, text) IS
    'Recover text from a bare vector: the k stored texts nearest to it among every collection embedded with that model version (or the one named), with their similarity.';
