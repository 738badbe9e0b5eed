-- Similarity search and recovery by nearest stored text: the stable SQL API.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.
--
-- Every query is built so that it matches the partial HNSW index of its
-- (collection, model): the same cast expression (to vector or halfvec, the
-- version's storage), the ids as literals (a
-- parameter would hide the index predicate from the planner), the model's own
-- distance operator. A vector is only compared with vectors of its own model.

-- How many chunks to read for k rows: rows with many chunks near the query
-- would otherwise leave fewer than k distinct rows.
CREATE OR REPLACE FUNCTION vk._chunks_for_rows(k integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN least(greatest(k * 10, 40), 1000);
COMMENT ON FUNCTION vk._chunks_for_rows(integer) IS 'Internal: how many chunks to read for k distinct rows.';

-- A filter that matches fewer vectors than this is ranked exactly (all its
-- matches, from the metadata index): cheaper than walking the HNSW graph
-- past the many rows it rejects, and exact. Measured in bench/filters.py.
CREATE OR REPLACE FUNCTION vk._exact_bound(k integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN greatest(2000, k * 100);
COMMENT ON FUNCTION vk._exact_bound(integer) IS
    'Internal: filters matching fewer vectors than this are searched exactly rather than through the HNSW index.';

-- The nearest-neighbour query over one (collection, model), as its HNSW index
-- serves it; $1 = query vector, $2 = k, $3 = filter (with filtered).
--   chunks: every chunk (vk.search_chunks); otherwise rows, a chunked row once
--           with its best chunk's text and distance;
--   exact:  ordered by an expression the index does not serve (+ 0), so the
--           planner reads the matching rows (metadata index) and sorts them.
-- An outer ORDER BY puts back in order what an iterative index scan in
-- relaxed_order returns slightly out of it.
-- On Citus the index scan runs on a worker node, in a session that gets this
-- transaction's settings only inside BEGIN ... COMMIT: there the query carries
-- them itself (vk._on_shard), read when it is built, after vk._widen_ef_search.
CREATE OR REPLACE FUNCTION vk._nearest_sql(c vk.collections, m vk.models, chunks boolean, filtered boolean, exact boolean)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    dist    text := format('(e.embedding::%3$s(%1$s) %2$s $1::%3$s(%1$s))', m.dim, vk._operator(m.distance), m.storage);
    per_row boolean := NOT chunks AND c.chunking->>'method' <> 'none';
    shard   text := '';
    core   text;
BEGIN
    IF NOT exact AND vk._citus_table('vk.embeddings') THEN
        shard := format(' AND vk._on_shard(%s, %L)',
                        coalesce(nullif(current_setting('hnsw.ef_search', true), '')::integer, 40),
                        CASE WHEN vk._iterative_scans() THEN current_setting('hnsw.iterative_scan', true) END);
    END IF;
    core := format(
        'SELECT e.pk, e.chunk, e.start_char, coalesce(e.end_char, e.start_char + length(e.body)) AS end_char, '
        '       e.body, %1$s::float8 AS distance '
        'FROM vk.embeddings e WHERE e.collection_id = %2$s AND e.model_id = %3$s%4$s%7$s '
        'ORDER BY %1$s%5$s LIMIT %6$s',
        dist, c.id, m.id, CASE WHEN filtered THEN ' AND e.metadata @> $3' ELSE '' END,
        CASE WHEN exact THEN ' + 0' ELSE '' END,
        CASE WHEN NOT per_row THEN '$2' WHEN exact THEN 'ALL' ELSE 'vk._chunks_for_rows($2)' END,
        shard);
    IF per_row THEN
        RETURN 'SELECT b.* FROM (SELECT DISTINCT ON (n.pk) n.* FROM (' || core || ') n '
            || 'ORDER BY n.pk, n.distance) b ORDER BY b.distance LIMIT $2';
    END IF;
    -- Only a relaxed_order scan returns rows out of order; otherwise the query
    -- stays flat: on Citus an outer query over a multi-shard subquery with a
    -- LIMIT is planned in two steps (bench/citus.py: +3 to 5 ms a search).
    IF exact OR coalesce(current_setting('hnsw.iterative_scan', true), 'off') <> 'relaxed_order' THEN
        RETURN core;
    END IF;
    RETURN 'SELECT n.* FROM (' || core || ') n ORDER BY n.distance';
END
$$;
COMMENT ON FUNCTION vk._nearest_sql(vk.collections, vk.models, boolean, boolean, boolean) IS
    'Internal: the nearest-neighbour query of a (collection, model): rows or chunks, filtered by metadata or not, through the HNSW index or exact; $1 = vector, $2 = k, $3 = filter.';

-- pgvector 0.8 brought iterative index scans (hnsw.iterative_scan); 0.7
-- refuses the setting (its prefix hnsw. is reserved).
CREATE OR REPLACE FUNCTION vk._iterative_scans() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT string_to_array(e.extversion, '.')::int[] >= '{0,8}' FROM pg_extension e
                     WHERE e.extname = 'vector'), false);
$$;
COMMENT ON FUNCTION vk._iterative_scans() IS
    'Internal: whether the installed pgvector (0.8 or later) has iterative index scans, which filtered search uses for broad filters.';

-- A filter that matches nothing is usually a careless one: a key no row's
-- metadata has (a typo), or a value of another JSON type than the rows hold
-- ({"section": 8} where they hold "8"; "x" where they hold ["x", "y"], which
-- containment does not match). Said as a notice, or raised where
-- vk.strict_filters is on, naming the keys and types present. Only the rows
-- the caller may read are looked at (row security on vk.embeddings), and
-- only when nothing matches, so a search that finds rows pays nothing; a
-- right key and type stop each check at the first row that has them, while
-- a careless filter reads every row once or twice (bench/filters.py: 0.1 to
-- 0.25 s at 100,000 rows).
CREATE OR REPLACE FUNCTION vk._explain_empty_filter(c vk.collections, m vk.models, filter jsonb) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    f       record;
    problem text;
    present text;
    hint    text;
BEGIN
    IF jsonb_typeof(filter) <> 'object' THEN
        RAISE EXCEPTION 'vectorkeep: a filter is a jsonb object, not %', filter
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example filter => ''{"tenant": 2}'': the rows whose metadata contains it.';
    END IF;
    IF EXISTS (SELECT 1 FROM vk.embeddings e
               WHERE e.collection_id = c.id AND e.model_id = m.id AND e.metadata @> filter) THEN
        RETURN;
    END IF;
    FOR f IN SELECT x.key, x.value FROM jsonb_each(filter) x ORDER BY x.key LOOP
        IF NOT EXISTS (SELECT 1 FROM vk.embeddings e
                       WHERE e.collection_id = c.id AND e.model_id = m.id AND e.metadata ? f.key) THEN
            problem := format('no row of collection "%s" has the metadata key "%s"', c.name, f.key);
        ELSIF NOT EXISTS (SELECT 1 FROM vk.embeddings e
                          WHERE e.collection_id = c.id AND e.model_id = m.id
                            AND jsonb_typeof(e.metadata -> f.key) = jsonb_typeof(f.value)) THEN
            problem := format('the filter gives "%s" a %s (%s), and no row''s "%s" is a %s',
                              f.key, jsonb_typeof(f.value), f.value, f.key, jsonb_typeof(f.value))
                       -- From 1,000 rows holding the key: a hint, not worth a third read of every row.
                       || CASE WHEN jsonb_typeof(f.value) <> 'array'
                                    AND EXISTS (SELECT 1 FROM (SELECT e.metadata FROM vk.embeddings e
                                                               WHERE e.collection_id = c.id AND e.model_id = m.id
                                                                 AND e.metadata ? f.key LIMIT 1000) s
                                                WHERE jsonb_typeof(s.metadata -> f.key) = 'array')
                               THEN format(' (an array holding it is matched by {"%s": [%s]})', f.key, f.value) ELSE '' END;
        END IF;
        EXIT WHEN problem IS NOT NULL;
    END LOOP;
    IF problem IS NULL THEN
        RETURN;  -- the keys and types are right: no row has those values
    END IF;
    SELECT string_agg(format('"%s" (%s)', t.key, t.types), ', ' ORDER BY t.key) INTO present
    FROM (SELECT x.key, string_agg(DISTINCT jsonb_typeof(x.value), ' or ') AS types
          FROM (SELECT e.metadata FROM vk.embeddings e
                WHERE e.collection_id = c.id AND e.model_id = m.id AND jsonb_typeof(e.metadata) = 'object'
                LIMIT 1000) s,
               jsonb_each(s.metadata) x
          GROUP BY x.key) t;
    hint := CASE WHEN present IS NULL
                 THEN format('The rows of "%s" have no metadata: give it with vk.set_metadata(%L, ...).', c.name, c.name)
                 ELSE format('The rows'' metadata keys: %s.', present) END;
    IF coalesce(current_setting('vk.strict_filters', true), '') IN ('on', 'true', '1') THEN
        RAISE EXCEPTION 'vectorkeep: filter % matches nothing: %', filter, problem
            USING ERRCODE = 'invalid_parameter_value', HINT = hint;
    END IF;
    RAISE NOTICE 'vectorkeep: filter % matches nothing: %', filter, problem
        USING HINT = hint || ' SET vk.strict_filters = on makes this an error.';
END
$$;
COMMENT ON FUNCTION vk._explain_empty_filter(vk.collections, vk.models, jsonb) IS
    'Internal: raises for a filter that is not a jsonb object; where a filter matches no row the caller may read because of a key no row has or a value of another JSON type, a notice naming the keys and types present (an error with SET vk.strict_filters = on).';

-- The k nearest rows (or chunks) of a collection whose metadata contains
-- filter. Without a filter: one HNSW index scan. With one: a filter that
-- matches few vectors is ranked exactly; a broader one through pgvector's
-- iterative index scan, which reads on past rejected rows; and if that still
-- finds fewer than k, exactly. So k rows come back whenever k rows match.
-- With pgvector 0.7 a broad filter reads the plain index scan's ef_search
-- nearest and keeps those that match: fewer than k sends it to exact too.
CREATE OR REPLACE FUNCTION vk._nearest(
    c vk.collections, m vk.models, query vector, k integer, filter jsonb, chunks boolean DEFAULT false
) RETURNS TABLE (pk text, chunk integer, start_char integer, end_char integer, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    per_row  boolean := NOT chunks AND c.chunking->>'method' <> 'none';
    matching bigint;
    found    vk._neighbour[];
    scan      text := coalesce(nullif(current_setting('hnsw.iterative_scan', true), ''), 'off');
    iterative boolean := vk._iterative_scans();
BEGIN
    PERFORM vk._widen_ef_search(CASE WHEN per_row THEN vk._chunks_for_rows(k) ELSE k END);
    IF filter IS NULL THEN
        RETURN QUERY EXECUTE vk._nearest_sql(c, m, chunks, false, false) USING query, k;
        RETURN;
    END IF;
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM vk.embeddings e WHERE e.collection_id = %s '
                   'AND e.model_id = %s AND e.metadata @> $1 LIMIT %s) x', c.id, m.id, vk._exact_bound(k))
        INTO matching USING filter;
    IF matching = 0 THEN  -- a filter that is not an object too
        PERFORM vk._explain_empty_filter(c, m, filter);
    END IF;
    IF matching < vk._exact_bound(k) THEN
        RETURN QUERY EXECUTE vk._nearest_sql(c, m, chunks, true, true) USING query, k, filter;
        RETURN;
    END IF;
    -- For this query only: the caller's later statements keep their setting.
    IF iterative THEN
        PERFORM vk._set_local('hnsw.iterative_scan', 'relaxed_order');
    END IF;
    EXECUTE 'SELECT array_agg(ROW(n.*)::vk._neighbour) FROM (' || vk._nearest_sql(c, m, chunks, true, false) || ') n'
        INTO found USING query, k, filter;
    IF iterative THEN
        PERFORM vk._set_local('hnsw.iterative_scan', scan);
    END IF;
    IF coalesce(cardinality(found), 0) < k THEN
        RETURN QUERY EXECUTE vk._nearest_sql(c, m, chunks, true, true) USING query, k, filter;
        RETURN;
    END IF;
    RETURN QUERY SELECT f.* FROM unnest(found) f;
END
$$;
COMMENT ON FUNCTION vk._nearest(vk.collections, vk.models, vector, integer, jsonb, boolean) IS
    'Internal: the k nearest rows (or chunks) of a collection whose metadata contains filter: HNSW index, iterative index scan, or exact, so that k come back whenever k match.';

-- HNSW returns at most hnsw.ef_search rows: widen it for large k, for this
-- transaction only, never narrowing what the session chose.
-- A setting of pgvector's index scans for this transaction. On Citus the
-- shards' connections get a setting only from a SET LOCAL, and only with
-- citus.propagate_set_commands = 'local' (a plain SET or set_config stays on
-- the coordinator): there it is sent that way.
CREATE OR REPLACE FUNCTION vk._set_local(name text, value text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF name !~ '^hnsw\.[a-z_]+$' THEN
        RAISE EXCEPTION 'vectorkeep: % is not a setting of pgvector''s HNSW scans', name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF vk._citus_table('vk.embeddings') THEN
        SET LOCAL citus.propagate_set_commands = 'local';
        EXECUTE format('SET LOCAL %s = %L', name, value);
    ELSE
        PERFORM set_config(name, value, true);
    END IF;
END
$$;
COMMENT ON FUNCTION vk._set_local(text, text) IS
    'Internal: set an hnsw.* setting for this transaction, on Citus for the shards'' connections too.';

-- The settings of a shard's HNSW scan, in its own session: a condition
-- without columns is evaluated once, before the index scan reads its first
-- row (a one-time filter), and pgvector reads the settings then. Declared
-- STABLE for that reason only (a volatile one would be evaluated per row,
-- too late); it changes nothing but the transaction's own hnsw.* settings.
CREATE OR REPLACE FUNCTION vk._on_shard(ef_search integer, iterative_scan text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM set_config('hnsw.ef_search', ef_search::text, true);
    IF iterative_scan IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', iterative_scan, true);
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION vk._on_shard(integer, text) IS
    'Internal (Citus): true, after setting hnsw.ef_search and hnsw.iterative_scan (unless NULL) for the transaction of the node that runs the query.';

CREATE OR REPLACE FUNCTION vk._widen_ef_search(k integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ef integer := coalesce(nullif(current_setting('hnsw.ef_search', true), '')::integer, 40);
BEGIN
    IF k > ef OR vk._citus_table('vk.embeddings') THEN
        -- On Citus always: the shards' sessions know only what this transaction sends them.
        PERFORM vk._set_local('hnsw.ef_search', greatest(ef, least(k, 1000))::text);
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

-- similarity: 1 - cosine distance for cosine models, the core product for
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

CREATE OR REPLACE FUNCTION vk.search(
    collection text, query vector, k integer DEFAULT 10, model text DEFAULT NULL, filter jsonb DEFAULT NULL
) RETURNS TABLE (pk text, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections := vk._readable(vk._collection(collection));
    m vk.models := vk._collection_model(c, model);
    hit record;
BEGIN
    PERFORM vk._check_dimension(query, m);
    PERFORM vk._check_k(k);
    IF filter IS NULL THEN
        -- The plain index query straight away: the common case, one function call less.
        -- Its rows one by one rather than a query around it, which Citus would plan in two steps.
        PERFORM vk._widen_ef_search(CASE WHEN c.chunking->>'method' = 'none' THEN k ELSE vk._chunks_for_rows(k) END);
        FOR hit IN EXECUTE vk._nearest_sql(c, m, false, false, false) USING query, k LOOP
            pk := hit.pk;
            body := hit.body;
            distance := hit.distance;
            RETURN NEXT;
        END LOOP;
        RETURN;
    END IF;
    RETURN QUERY SELECT n.pk, n.body, n.distance FROM vk._nearest(c, m, query, k, filter) n;
END
$$;
COMMENT ON FUNCTION vk.search(text, vector, integer, text, jsonb) IS
    'The k rows of a collection nearest to a query vector (nearest first). model: the version the vector was made with ("name" or "name@version"); NULL means the collection''s search default, so a vector of another version must name it. filter: only rows whose metadata contains it (k rows whenever k match). A chunked row comes once, by its best chunk.';

-- A text query is encoded by a worker with the version the search uses
-- (vk.embed), so switching a collection's default never mixes two spaces;
-- then it is the vector query.
CREATE OR REPLACE FUNCTION vk.search(
    collection text, query text, k integer DEFAULT 10, model text DEFAULT NULL, filter jsonb DEFAULT NULL
) RETURNS TABLE (pk text, body text, distance double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    c vk.collections := vk._readable(vk._collection(collection));
    m vk.models := vk._collection_model(c, model);
BEGIN
    PERFORM vk._check_k(k);  -- before a worker is asked for anything
    RETURN QUERY SELECT * FROM vk.search(collection, vk._query_vector(m, query), k, model, filter);
END
$$;
COMMENT ON FUNCTION vk.search(text, text, integer, text, jsonb) IS
    'The k rows of a collection nearest to a text, encoded by a running worker with the version the search uses (see vk.embed; SET vk.embed_timeout). A vector literal (''[0.1, ...]'') is read as that vector. filter: only rows whose metadata contains it.';

CREATE OR REPLACE FUNCTION vk.search_chunks(
    collection text, query vector, k integer DEFAULT 10, model text DEFAULT NULL, filter jsonb DEFAULT NULL
) RETURNS TABLE (pk text, chunk integer, start_char integer, end_char integer, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections := vk._readable(vk._collection(collection));
    m vk.models := vk._collection_model(c, model);
BEGIN
    PERFORM vk._check_dimension(query, m);
    PERFORM vk._check_k(k);
    RETURN QUERY SELECT * FROM vk._nearest(c, m, query, k, filter, true);
END
$$;
COMMENT ON FUNCTION vk.search_chunks(text, vector, integer, text, jsonb) IS
    'The k chunks nearest to a query vector, with their row, position, character offsets into the row''s text (body = substr(text, start_char + 1, end_char - start_char)) and distance; model and filter as in vk.search.';

CREATE OR REPLACE FUNCTION vk.search_chunks(
    collection text, query text, k integer DEFAULT 10, model text DEFAULT NULL, filter jsonb DEFAULT NULL
) RETURNS TABLE (pk text, chunk integer, start_char integer, end_char integer, body text, distance double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    c vk.collections := vk._readable(vk._collection(collection));
    m vk.models := vk._collection_model(c, model);
BEGIN
    PERFORM vk._check_k(k);  -- before a worker is asked for anything
    RETURN QUERY SELECT * FROM vk.search_chunks(collection, vk._query_vector(m, query), k, model, filter);
END
$$;
COMMENT ON FUNCTION vk.search_chunks(text, text, integer, text, jsonb) IS
    'The k chunks nearest to a text, encoded by a running worker with the version the search uses (see vk.embed).';

-- A chunked row is represented by the mean of its chunks' vectors. A row
-- without one is told apart: not in the table (deleted?), queued, or empty.
CREATE OR REPLACE FUNCTION vk._row_vector(c vk.collections, m vk.models, row_pk text) RETURNS vector
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v     vector;
    found boolean;
BEGIN
    SELECT avg(e.embedding) INTO v FROM vk.embeddings e
    WHERE e.collection_id = c.id AND e.pk = row_pk AND e.model_id = m.id;
    IF v IS NOT NULL THEN
        RETURN v;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s s WHERE s.%I::text = $1)', c.source, c.pk_column)
        INTO found USING row_pk;
    IF NOT found THEN
        RAISE EXCEPTION 'vectorkeep: collection "%" has no row %', c.name, quote_literal(row_pk)
            USING ERRCODE = 'no_data_found',
                  HINT = format('No row of %s has %I = %L: it was deleted, or the key is wrong.', c.source, c.pk_column, row_pk);
    END IF;
    RAISE EXCEPTION 'vectorkeep: row % of collection "%" has no vector for model % yet', quote_literal(row_pk), c.name,
            vk.model_label(m)
        USING ERRCODE = 'no_data_found',
              HINT = CASE WHEN EXISTS (SELECT 1 FROM vk.embeddings e WHERE e.collection_id = c.id AND e.pk = row_pk)
                                OR NOT EXISTS (SELECT 1 FROM vk.embeddings e WHERE e.collection_id = c.id AND e.model_id = m.id)
                          THEN 'A worker embeds it soon (SELECT * FROM vk.status); its text may also be empty.'
                          ELSE 'Its text may be empty (nothing to embed), or a worker has yet to embed it (SELECT * FROM vk.status).' END;
END
$$;
COMMENT ON FUNCTION vk._row_vector(vk.collections, vk.models, text) IS
    'Internal: a row''s vector under a version (the mean of its chunks''); raises saying whether the row is gone or not embedded yet.';

CREATE OR REPLACE FUNCTION vk.row_vector(collection text, row_pk text, model text DEFAULT NULL) RETURNS vector
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections := vk._readable(vk._collection(collection));
BEGIN
    RETURN vk._row_vector(c, vk._collection_model(c, model), row_pk);
END
$$;
COMMENT ON FUNCTION vk.row_vector(text, text, text) IS
    'A stored row''s vector under the collection''s search model (or the version named; the mean of its chunks when chunked), e.g. SELECT * FROM vk.search(''documents'', vk.row_vector(''documents'', ''1''), 5, ''minilm@1'').';

CREATE OR REPLACE FUNCTION vk.similar(
    collection text, row_pk text, k integer DEFAULT 10, model text DEFAULT NULL, filter jsonb DEFAULT NULL
) RETURNS TABLE (pk text, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections := vk._readable(vk._collection(collection));
    m vk.models := vk._collection_model(c, model);
    v vector;
BEGIN
    PERFORM vk._check_k(k);
    v := vk._row_vector(c, m, row_pk);
    RETURN QUERY SELECT n.pk, n.body, n.distance FROM vk._nearest(c, m, v, k + 1, filter) n
                 WHERE n.pk <> row_pk LIMIT k;
END
$$;
COMMENT ON FUNCTION vk.similar(text, text, integer, text, jsonb) IS
    'The k rows most similar to an existing row of the collection (itself excluded), by its stored vector (the mean of its chunks'' vectors when chunked); filter as in vk.search.';

-- Keys as the table types them: vk.similar('docs', 883) and a uuid work as
-- their text does (keys are stored as key::text). A quoted literal still
-- takes the text function: PostgreSQL prefers it for an untyped argument.
CREATE OR REPLACE FUNCTION vk.row_vector(collection text, row_pk anycompatible, model text DEFAULT NULL) RETURNS vector
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN vk.row_vector(collection, row_pk::text, model);
END
$$;
COMMENT ON FUNCTION vk.row_vector(text, anycompatible, text) IS
    'vk.row_vector with the row''s key in its own type (integer, bigint, uuid, ...): the same as passing it as text.';

CREATE OR REPLACE FUNCTION vk.similar(
    collection text, row_pk anycompatible, k integer DEFAULT 10, model text DEFAULT NULL, filter jsonb DEFAULT NULL
) RETURNS TABLE (pk text, body text, distance double precision)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT * FROM vk.similar(collection, row_pk::text, k, model, filter);
END
$$;
COMMENT ON FUNCTION vk.similar(text, anycompatible, integer, text, jsonb) IS
    'vk.similar with the row''s key in its own type (integer, bigint, uuid, ...): the same as passing it as text.';

-- Hybrid search: a keyword list (BM25 over the stored text, 33_keywords.sql)
-- and a vector list (as vk.search), each `depth` deep, fused; each row once.
--   convex: weight * the list's score scaled to [0, 1] over that list
--           (min-max: its best row 1, its last 0), summed over both lists,
--           0 for a list the row is not in (Bruch et al., ACM TOIS 2023:
--           better than RRF in and out of domain, and less sensitive to its
--           one parameter, the weights' ratio);
--   rrf:    weight / (60 + the row's rank) in each list (Cormack et al.
--           2009: 60 keeps a first place in one list from outweighing good
--           places in both).
-- Fusion and weights left NULL come from the collection's current settings
-- (vk.hybrid_settings: vk.tune_hybrid or vk.set_hybrid_defaults), else from
-- vk._hybrid_defaults().
CREATE OR REPLACE FUNCTION vk.hybrid_search(
    collection text, query text, k integer DEFAULT 10, filter jsonb DEFAULT NULL,
    keyword_weight double precision DEFAULT NULL, vector_weight double precision DEFAULT NULL, model text DEFAULT NULL,
    fusion text DEFAULT NULL
) RETURNS TABLE (pk text, body text, score double precision, keyword_rank integer, vector_rank integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    c     vk.collections := vk._readable(vk._collection(collection));
    m     vk.models := vk._collection_model(c, model);
    s     vk.hybrid_settings := vk._hybrid_setting(c.id);
    kw    double precision := coalesce(keyword_weight, s.keyword_weight);
    vw    double precision := coalesce(vector_weight, s.vector_weight);
    how   text := coalesce(fusion, s.fusion);
    depth integer;
    v     vector;
BEGIN
    PERFORM vk._check_k(k);
    PERFORM vk._check_hybrid(how, kw, vw);
    depth := least(greatest(k * 5, 50), 1000);
    IF vw > 0 THEN
        v := vk._query_vector(m, query);
    ELSIF filter IS NOT NULL THEN
        PERFORM vk._explain_empty_filter(c, m, filter);  -- vk._nearest says it where vectors rank too
    END IF;
    RETURN QUERY EXECUTE format(
        'WITH by_vector AS ('
        '    SELECT n.pk, n.body, -n.distance AS score, row_number() OVER (ORDER BY n.distance)::integer AS rank '
        '    FROM vk._nearest($1, $2, $3, $4, $5) n WHERE $3 IS NOT NULL), '
        'by_keyword AS (%s), '
        'scaled AS ('
        '    SELECT l.pk, l.body, l.rank, true AS by_vector, coalesce((l.score - min(l.score) OVER ()) '
        '           / nullif(max(l.score) OVER () - min(l.score) OVER (), 0), 1) AS scaled '
        '    FROM by_vector l '
        '    UNION ALL '
        '    SELECT l.pk, l.body, l.rank, false, coalesce((l.score - min(l.score) OVER ()) '
        '           / nullif(max(l.score) OVER () - min(l.score) OVER (), 0), 1) '
        '    FROM by_keyword l WHERE $7 > 0) '
        'SELECT x.pk, (array_agg(x.body ORDER BY x.by_vector DESC))[1], '
        '       sum(CASE WHEN x.by_vector THEN $8 ELSE $7 END '
        '           * CASE WHEN $10 = ''rrf'' THEN 1.0 / (60 + x.rank) ELSE x.scaled END) AS score, '
        '       min(x.rank) FILTER (WHERE NOT x.by_vector), min(x.rank) FILTER (WHERE x.by_vector) '
        'FROM scaled x GROUP BY x.pk '
        'ORDER BY score DESC, x.pk LIMIT $9',
        CASE WHEN vk._citus_table('vk.embeddings') THEN vk._keyword_sql(c, m)
             ELSE 'SELECT k.pk, k.body, k.score, k.rank FROM vk._keyword_bm25($1, $2, $6, $4, $5) k' END)
        USING c, m, v, depth, filter, query, kw, vw, k, how;
END
$$;
COMMENT ON FUNCTION vk.hybrid_search(text, text, integer, jsonb, double precision, double precision, text, text) IS
    'Rows ranked by a fusion of a keyword list (BM25 over the stored text: the collection''s text_search configuration, any of the query''s words) and a vector list (the text encoded by a worker, as in vk.search); each row once, chunked rows by their best chunk. fusion: ''convex'' (weights times each list''s min-max scaled score) or ''rrf'' (weights over 60 + rank); NULL fusion and weights: the collection''s settings (vk.tune_hybrid, vk.set_hybrid_defaults). vector_weight => 0: keyword only, no worker needed; keyword_weight => 0: vector only.';

-- vectorkeep's own defaults, where a collection has no settings: the best
-- nDCG@10 of every fusion and weight (tenths) on the Python documentation set
-- of bench/relevance.py, reported on its other set, which chose nothing
-- (bench/README.md). A collection fits its own with vk.tune_hybrid.
CREATE OR REPLACE FUNCTION vk._hybrid_defaults() RETURNS vk.hybrid_settings
LANGUAGE sql IMMUTABLE
RETURN ROW(NULL, 0, 'convex', 0.1, 0.9, NULL, NULL, NULL, NULL, NULL)::vk.hybrid_settings;
COMMENT ON FUNCTION vk._hybrid_defaults() IS
    'Internal: hybrid search''s fusion and weights where a collection has no settings (convex, keyword 0.1, vector 0.9).';

-- Column by column (SELECT h.*): on Citus a whole-row reference to a
-- reference table is read as its shard's row type, which is not this one.
CREATE OR REPLACE FUNCTION vk._hybrid_setting(c_id bigint) RETURNS vk.hybrid_settings
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s vk.hybrid_settings;
BEGIN
    SELECT h.* INTO s FROM vk.hybrid_settings h WHERE h.collection_id = c_id ORDER BY h.version DESC LIMIT 1;
    RETURN CASE WHEN FOUND THEN s ELSE vk._hybrid_defaults() END;
END
$$;
COMMENT ON FUNCTION vk._hybrid_setting(bigint) IS
    'Internal: a collection''s current hybrid settings (its latest version in vk.hybrid_settings), else vectorkeep''s defaults.';

CREATE OR REPLACE FUNCTION vk._check_hybrid(fusion text, keyword_weight double precision, vector_weight double precision)
RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    w record;
    allowed CONSTANT text := 'Weights are finite numbers >= 0 (0: leave that list out; NULL: the collection''s setting), not both 0.';
BEGIN
    IF fusion IS NULL OR fusion NOT IN ('convex', 'rrf') THEN
        RAISE EXCEPTION 'vectorkeep: fusion => % is not a fusion', coalesce(quote_literal(fusion), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = '''convex'' (weights times each list''s scaled scores) or ''rrf'' (reciprocal rank fusion); NULL: the collection''s setting.';
    END IF;
    FOR w IN SELECT * FROM (VALUES ('keyword_weight', keyword_weight), ('vector_weight', vector_weight)) t (name, value)
    LOOP
        -- Not "< 0": 'NaN' compares above every number (NaN < 0 is false), and NaN or Infinity
        -- makes every score NaN or infinite.
        IF NOT coalesce(w.value >= 0 AND w.value < 'Infinity', false) THEN
            RAISE EXCEPTION 'vectorkeep: % => % is not a weight', w.name, coalesce(w.value::text, 'NULL')
                USING ERRCODE = 'invalid_parameter_value', HINT = allowed;
        END IF;
    END LOOP;
    -- Not "keyword_weight + vector_weight = 0": two huge weights would overflow the sum.
    IF keyword_weight = 0 AND vector_weight = 0 THEN
        RAISE EXCEPTION 'vectorkeep: the weights are both 0: nothing would rank the rows'
            USING ERRCODE = 'invalid_parameter_value', HINT = allowed;
    END IF;
END
$$;
COMMENT ON FUNCTION vk._check_hybrid(text, double precision, double precision) IS
    'Internal: raises unless fusion is convex or rrf and the weights are finite, >= 0 and not both 0.';

-- Keyword ranking on Citus, where vk.embeddings' shards keep no BM25
-- statistics (33_keywords.sql), as its GIN index serves it: the rows with
-- any of the query's words ($6), filtered by $5, $4 deep, each by its best
-- chunk. A row scores the BM25 weight of each query word it holds,
-- ln(1 + (N - n + 0.5) / (n + 0.5)) for a word in n of N chunks, so that a
-- rare word counts for more than a common one (ts_rank_cd alone has no
-- notion of rarity); ts_rank_cd (frequency, proximity) breaks ties. N is the
-- row count PostgreSQL keeps for the (collection, model)'s index. The
-- configuration and ids are literals, as in the index definition, so that
-- the planner matches them. The word weights are computed once
-- (MATERIALIZED): inlined, they were recomputed for every matching row,
-- each time over every match (2 to 20 s a query at 10,000 rows).
CREATE OR REPLACE FUNCTION vk._keyword_sql(c vk.collections, m vk.models) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN format(
    'WITH hits AS ('
    '    SELECT e.pk, e.body, tsvector_to_array(d.doc) AS words, ts_rank_cd(d.doc, q.q) AS closeness '
    '    FROM vk.embeddings e, (SELECT vk._any_word(%1$L::regconfig, $6) AS q) q, '
    '         LATERAL (SELECT to_tsvector(%1$L::regconfig, e.body) AS doc) d '
    '    WHERE e.collection_id = %2$s AND e.model_id = %3$s AND to_tsvector(%1$L::regconfig, e.body) @@ q.q '
    '      AND ($5 IS NULL OR e.metadata @> $5)), '
    'weights AS MATERIALIZED ('
    '    SELECT w.word, ln(1 + (greatest(n.chunks, x.n) - x.n + 0.5) / (x.n + 0.5)) AS idf '
    '    FROM unnest(tsvector_to_array(to_tsvector(%1$L::regconfig, $6))) w(word), '
    '         LATERAL (SELECT count(*) AS n FROM hits h WHERE w.word = ANY (h.words)) x, '
    '         (SELECT coalesce((SELECT cl.reltuples FROM pg_class cl WHERE cl.relname = %4$L '
    '                          AND cl.relnamespace = %5$L::regnamespace), 0) AS chunks) n), '
    'scored AS ('
    '    SELECT h.pk, h.body, (SELECT sum(w.idf) FROM weights w WHERE w.word = ANY (h.words)) '
    '                         + h.closeness / 1000 AS score '
    '    FROM hits h) '
    'SELECT r.pk, r.body, r.score, row_number() OVER (ORDER BY r.score DESC, r.pk)::integer AS rank FROM ('
    '    SELECT DISTINCT ON (s.pk) s.pk, s.body, s.score FROM scored s ORDER BY s.pk, s.score DESC) r '
    'ORDER BY r.score DESC, r.pk LIMIT $4',
    c.text_search, c.id, m.id, vk._keyword_index_name(c.id, m.id), 'vk');
COMMENT ON FUNCTION vk._keyword_sql(vk.collections, vk.models) IS
    'Internal, on Citus: the keyword ranking query of a (collection, model) that its GIN index serves (BM25 idf per word, ts_rank_cd for ties; no term frequency saturation or length).';

-- A natural-language query as a tsquery of any of its words (plainto_tsquery
-- would demand all of them, and a question rarely shares every word with
-- its answer); ts_rank_cd ranks rows with more of them, closer together, first.
CREATE OR REPLACE FUNCTION vk._any_word(config regconfig, query text) RETURNS tsquery
LANGUAGE sql STABLE PARALLEL SAFE
RETURN nullif(array_to_string(ARRAY(
    SELECT '''' || replace(replace(w, '\', '\\'), '''', '''''') || ''''
    FROM unnest(tsvector_to_array(to_tsvector(config, query))) w), ' | '), '')::tsquery;
COMMENT ON FUNCTION vk._any_word(regconfig, text) IS 'Internal: a tsquery matching any word of a text (after its configuration''s stemming and stop words).';

CREATE OR REPLACE FUNCTION vk.recover(query vector, model text, k integer DEFAULT 5, only_collection text DEFAULT NULL)
RETURNS TABLE (collection text, pk text, body text, similarity double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m      vk.models := vk._require_usable(vk.model(model));
    one    vk.collections;
    c      vk.collections;
    c_id   bigint;
    names  text[] := '{}';
    keys   text[] := '{}';
    bodies text[] := '{}';
    dists  float8[] := '{}';
BEGIN
    PERFORM vk._check_dimension(query, m);
    PERFORM vk._check_k(k);
    IF only_collection IS NOT NULL THEN
        one := vk._collection(only_collection);
    END IF;
    -- Each collection's k nearest, then the k nearest of those. Collection by
    -- collection, a row read into a variable: Citus passes no whole row of
    -- its tables to a function.
    FOR c_id IN SELECT cm.collection_id FROM vk.collection_models cm
                WHERE cm.model_id = m.id AND (one.id IS NULL OR cm.collection_id = one.id) ORDER BY 1 LOOP
        SELECT * INTO c FROM vk.collections x WHERE x.id = c_id;
        SELECT names || array_agg(c.name), keys || array_agg(n.pk), bodies || array_agg(n.body),
               dists || array_agg(n.distance)
        INTO names, keys, bodies, dists
        FROM vk._nearest(c, m, query, k, NULL) n;
    END LOOP;
    RETURN QUERY
    SELECT t.name, t.pk, t.body, vk._similarity(t.distance, m.distance)
    FROM unnest(names, keys, bodies, dists) AS t(name, pk, body, distance)
    ORDER BY t.distance
    LIMIT k;
END
$$;
COMMENT ON FUNCTION vk.recover(vector, text, integer, text) IS
    'Recover text from a bare vector: the k stored texts nearest to it among every collection embedded with that model version (or the one named), with their similarity.';
