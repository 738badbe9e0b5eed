-- Hybrid search's settings per collection: set by hand, or fitted to a few
-- labelled queries a user gives, and kept as versions (vk.hybrid_settings;
-- the latest applies to every vk.hybrid_search that leaves them NULL).
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

-- nDCG@10 of one ranked list, binary relevance: the sum of 1 / log2(rank + 1)
-- over the relevant keys in its first 10, over the same for an ideal list.
CREATE OR REPLACE FUNCTION vk._ndcg_at_10(ranked text[], relevant text[]) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT coalesce(sum(ln(2) / ln(r.i + 1)), 0) FROM unnest(ranked[1:10]) WITH ORDINALITY r(pk, i)
        WHERE r.pk = ANY (relevant))
       / (SELECT sum(ln(2) / ln(i + 1))
          FROM generate_series(1, least(10, (SELECT count(DISTINCT x) FROM unnest(relevant) x)::integer)) i);
COMMENT ON FUNCTION vk._ndcg_at_10(text[], text[]) IS
    'Internal: nDCG@10 of a ranked list of keys against the relevant keys (binary relevance).';

CREATE OR REPLACE FUNCTION vk._record_hybrid(
    c_id bigint, fusion text, keyword_weight double precision, vector_weight double precision,
    ndcg_at_10 double precision, queries integer, tried jsonb
) RETURNS vk.hybrid_settings
LANGUAGE plpgsql AS $$
DECLARE
    saved vk.hybrid_settings;
BEGIN
    PERFORM vk._check_hybrid(fusion, keyword_weight, vector_weight);
    -- One version number per change, whoever else records one at the same time.
    PERFORM pg_advisory_xact_lock(hashtext('vk.hybrid_settings'), (c_id % 2147483647)::integer);
    INSERT INTO vk.hybrid_settings (collection_id, version, fusion, keyword_weight, vector_weight, ndcg_at_10, queries, tried)
    SELECT c_id, coalesce(max(h.version), 0) + 1, _record_hybrid.fusion, _record_hybrid.keyword_weight,
           _record_hybrid.vector_weight, _record_hybrid.ndcg_at_10, _record_hybrid.queries, _record_hybrid.tried
    FROM vk.hybrid_settings h WHERE h.collection_id = c_id
    RETURNING * INTO saved;
    RETURN saved;
END
$$;
COMMENT ON FUNCTION vk._record_hybrid(bigint, text, double precision, double precision, double precision, integer, jsonb) IS
    'Internal: a collection''s next version of hybrid settings.';

CREATE OR REPLACE FUNCTION vk.set_hybrid_defaults(
    collection text, fusion text DEFAULT 'convex', keyword_weight double precision DEFAULT 0.1,
    vector_weight double precision DEFAULT 0.9
) RETURNS integer
LANGUAGE sql AS $$
    SELECT (vk._record_hybrid((vk._collection(collection)).id, fusion, keyword_weight, vector_weight, NULL, NULL, NULL)).version
$$;
COMMENT ON FUNCTION vk.set_hybrid_defaults(text, text, double precision, double precision) IS
    'A collection''s hybrid search settings, as a new version of vk.hybrid_settings: fusion (''convex'' or ''rrf'') and the weights vk.hybrid_search uses when a query leaves them NULL. Returns the version recorded.';

-- Fit the settings to labelled queries: every fusion with the vector list's
-- share of the weight from 0 to 1 by tenths, each run over every query
-- (vk.hybrid_search at k = 10), the best mean nDCG@10 kept (the first of
-- equals: convex before rrf, a smaller vector share first) and recorded with
-- every setting tried. Queries are encoded by a worker, as any text search.
CREATE OR REPLACE FUNCTION vk.tune_hybrid(collection text, queries jsonb, model text DEFAULT NULL)
RETURNS TABLE (version integer, fusion text, keyword_weight double precision, vector_weight double precision,
               ndcg_at_10 double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    c     vk.collections := vk._readable(vk._collection(collection));
    shape CONSTANT text := 'queries => ''[{"query": "how do I ...", "relevant": ["17", "42"]}, ...]'': '
                           'each a query and the keys of the rows that answer it.';
    q     jsonb;
    how   text;
    share double precision;
    mean  double precision;
    best  jsonb;
    tried jsonb := '[]';
BEGIN
    IF jsonb_typeof(queries) IS DISTINCT FROM 'array' OR jsonb_array_length(queries) = 0 THEN
        RAISE EXCEPTION 'vectorkeep: queries => % is not a list of labelled queries', coalesce(queries::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = shape;
    END IF;
    FOR q IN SELECT value FROM jsonb_array_elements(queries) LOOP
        IF jsonb_typeof(q) <> 'object' OR EXISTS (SELECT FROM jsonb_object_keys(q) k WHERE k NOT IN ('query', 'relevant'))
           OR jsonb_typeof(q -> 'query') IS DISTINCT FROM 'string' OR btrim(q ->> 'query') = ''
           OR jsonb_typeof(q -> 'relevant') IS DISTINCT FROM 'array' OR jsonb_array_length(q -> 'relevant') = 0
           OR EXISTS (SELECT FROM jsonb_array_elements(q -> 'relevant') r WHERE jsonb_typeof(r) NOT IN ('string', 'number')) THEN
            RAISE EXCEPTION 'vectorkeep: % is not a labelled query', q
                USING ERRCODE = 'invalid_parameter_value', HINT = shape;
        END IF;
        -- Keys that name no row would score 0 whatever the settings: a typo, most likely.
        IF NOT EXISTS (SELECT FROM vk.embeddings e
                       WHERE e.collection_id = c.id
                         AND e.pk IN (SELECT jsonb_array_elements_text(q -> 'relevant'))) THEN
            RAISE EXCEPTION 'vectorkeep: no row of collection "%" has a key of %', c.name, q -> 'relevant'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('The keys are %s values of %s, as text, of rows already embedded.', c.pk_column, c.source);
        END IF;
    END LOOP;
    FOREACH how IN ARRAY ARRAY['convex', 'rrf'] LOOP
        FOR tenth IN 0..10 LOOP
            share := tenth / 10.0;
            SELECT avg(vk._ndcg_at_10(
                       ARRAY(SELECT h.pk FROM vk.hybrid_search(collection, x.value ->> 'query', 10, NULL, 1 - share,
                                                               share, model, how) h),
                       ARRAY(SELECT jsonb_array_elements_text(x.value -> 'relevant'))))
            INTO mean FROM jsonb_array_elements(queries) x;
            tried := tried || jsonb_build_object('fusion', how, 'keyword_weight', 1 - share, 'vector_weight', share,
                                                 'ndcg_at_10', mean);
            IF best IS NULL OR mean > (best ->> 'ndcg_at_10')::double precision THEN
                best := tried -> -1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN QUERY
    SELECT s.version, s.fusion, s.keyword_weight, s.vector_weight, s.ndcg_at_10
    FROM vk._record_hybrid(c.id, best ->> 'fusion', (best ->> 'keyword_weight')::double precision,
                           (best ->> 'vector_weight')::double precision, (best ->> 'ndcg_at_10')::double precision,
                           jsonb_array_length(queries), tried) s;
END
$$;
COMMENT ON FUNCTION vk.tune_hybrid(text, jsonb, text) IS
    'Fit a collection''s hybrid search settings to labelled queries ([{"query": "...", "relevant": ["pk", ...]}, ...]): tries convex and rrf fusion with the vector share of the weight from 0 to 1 by tenths, keeps the best mean nDCG@10 and records it as a new version of vk.hybrid_settings (with every setting tried there). Returns that version, its fusion, weights and nDCG@10.';
