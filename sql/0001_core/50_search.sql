-- Similarity search and recovery: the stable SQL API.
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.
--
-- Every query is built so that it matches the partial HNSW index of its
-- (collection, model): the same cast expression, the ids as literals (a
-- parameter would hide the index predicate from the planner), the model's own
-- distance operator. A vector is only compared with vectors of its own model.

CREATE OR REPLACE FUNCTION vk.knn_sql(c_id bigint, m vk.models) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format(
    'SELECT e.pk, e.body, (e.embedding::vector(%1$s) %2$s $1::vector(%1$s))::float8 AS distance '
    'FROM vk.embeddings e WHERE e.collection_id = %3$s AND e.model_id = %4$s '
    'ORDER BY e.embedding::vector(%1$s) %2$s $1::vector(%1$s) LIMIT $2',
    m.dim, vk.operator(m.distance), c_id, m.id);
COMMENT ON FUNCTION vk.knn_sql(bigint, vk.models) IS
    'The nearest-neighbour query over one (collection, model) that its HNSW index serves; $1 = query vector, $2 = k.';

-- HNSW returns at most hnsw.ef_search rows: widen it for large k, for this
-- transaction only, never narrowing what the session chose.
CREATE OR REPLACE FUNCTION vk.widen_ef_search(k integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF k > coalesce(nullif(current_setting('hnsw.ef_search', true), '')::integer, 40) THEN
        PERFORM set_config('hnsw.ef_search', least(k, 1000)::text, true);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION vk.check_k(k integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'vectorkeep: k must be between 1 and 1000, not %', coalesce(k::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION vk.search(collection text, query vector, k integer DEFAULT 10, model text DEFAULT NULL)
RETURNS TABLE (pk text, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections := vk.collection(collection);
    m vk.models := vk.collection_model(c, model);
BEGIN
    PERFORM vk.check_dimension(query, m);
    PERFORM vk.check_k(k);
    PERFORM vk.widen_ef_search(k);
    RETURN QUERY EXECUTE vk.knn_sql(c.id, m) USING query, k;
END
$$;
COMMENT ON FUNCTION vk.search(text, vector, integer, text) IS
    'The k rows of a collection nearest to a query vector (nearest first), by the collection''s default model or the one named ("name" or "name@version"). Uses the HNSW index.';

-- The key argument is row_pk: a parameter cannot share the name of the pk output column.
CREATE OR REPLACE FUNCTION vk.similar(collection text, row_pk text, k integer DEFAULT 10, model text DEFAULT NULL)
RETURNS TABLE (pk text, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections := vk.collection(collection);
    m vk.models := vk.collection_model(c, model);
    v vector;
BEGIN
    PERFORM vk.check_k(k);
    SELECT e.embedding INTO v FROM vk.embeddings e
    WHERE e.collection_id = c.id AND e.pk = row_pk AND e.model_id = m.id;
    IF v IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: row % of collection "%" has no vector for model % yet', row_pk, c.name, vk.model_label(m)
            USING ERRCODE = 'no_data_found',
                  HINT = 'Check the key, or wait for a worker to embed it (SELECT * FROM vk.status).';
    END IF;
    PERFORM vk.widen_ef_search(k + 1);
    RETURN QUERY EXECUTE
        'SELECT r.pk, r.body, r.distance FROM (' || vk.knn_sql(c.id, m) || ') r WHERE r.pk <> $3 LIMIT $4'
        USING v, k + 1, row_pk, k;
END
$$;
COMMENT ON FUNCTION vk.similar(text, text, integer, text) IS
    'The k rows most similar to an existing row of the collection (itself excluded), by its stored vector.';

-- similarity: 1 - cosine distance for cosine models, the inner product for
-- ip models, minus the L2 distance for l2 models; larger is nearer.
CREATE OR REPLACE FUNCTION vk.similarity(distance double precision, metric text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE metric WHEN 'cosine' THEN 1 - distance ELSE -distance END;

CREATE OR REPLACE FUNCTION vk.recover(query vector, model text, k integer DEFAULT 5, only_collection text DEFAULT NULL)
RETURNS TABLE (collection text, pk text, body text, similarity double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m   vk.models := vk.require_usable(vk.model(model));
    one vk.collections;
    c   record;
    sql text := '';
BEGIN
    PERFORM vk.check_dimension(query, m);
    PERFORM vk.check_k(k);
    IF only_collection IS NOT NULL THEN
        one := vk.collection(only_collection);
    END IF;
    FOR c IN SELECT x.id, x.name FROM vk.collections x JOIN vk.collection_models cm ON cm.collection_id = x.id
             WHERE cm.model_id = m.id AND (one.id IS NULL OR x.id = one.id) ORDER BY x.id LOOP
        sql := sql || CASE WHEN sql = '' THEN '' ELSE ' UNION ALL ' END
            || format('(SELECT %L::text AS collection, r.* FROM (%s) r)', c.name, vk.knn_sql(c.id, m));
    END LOOP;
    IF sql = '' THEN
        RETURN;
    END IF;
    PERFORM vk.widen_ef_search(k);
    RETURN QUERY EXECUTE
        'SELECT u.collection, u.pk, u.body, vk.similarity(u.distance, $3) FROM (' || sql || ') u '
        'ORDER BY u.distance LIMIT $2'
        USING query, k, m.distance;
END
$$;
COMMENT ON FUNCTION vk.recover(vector, text, integer, text) IS
    'Recover text from a bare vector: the k stored texts nearest to it among every collection embedded with that model version (or the one named), with their similarity.';
