-- Keyword search: Okapi BM25 over the stored text, in plain PostgreSQL.
--
-- A chunk's score for a query is the sum, over the query's distinct words
-- that the chunk holds, of
--     idf(w) * tf / (tf + k1 * (1 - b + b * length / avgdl)),
--     idf(w) = ln(1 + (N - n + 0.5) / (n + 0.5)),
-- Lucene's BM25 (idf never negative; no (k1 + 1) factor, which would scale
-- every score alike), k1 = 1.2, b = 0.75: N the (collection, model)'s chunks,
-- n those holding w, avgdl their mean length, tf w's count in the chunk and
-- length its words, all as the collection's text_search configuration makes
-- them (to_tsvector: stemmed, stop words out, at most 256 occurrences of a
-- word counted per chunk). A row scores its best chunk.
--
-- The triggers below keep vk.keyword_postings and vk.keyword_stats current
-- under every write of vk.embeddings (a worker's, a re-embedding's, a
-- chunking change's, a DBA's), in the writer's transaction.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

CREATE OR REPLACE FUNCTION vk._bm25_weight(tf integer, length integer, avgdl double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
-- Every constant a double: a numeric 0.75 made each weight a numeric product,
-- a third of what an exhaustive search spent.
RETURN tf / (tf + 1.2::float8 * (0.25::float8 + 0.75::float8 * length / avgdl));
COMMENT ON FUNCTION vk._bm25_weight(integer, integer, double precision) IS
    'Internal: BM25''s term-frequency part, tf / (tf + k1 (1 - b + b length / avgdl)), k1 = 1.2, b = 0.75.';

CREATE OR REPLACE FUNCTION vk._bm25_idf(chunks double precision, holding double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ln(1 + (greatest(chunks, holding) - holding + 0.5) / (holding + 0.5));
COMMENT ON FUNCTION vk._bm25_idf(double precision, double precision) IS
    'Internal: BM25''s idf of a word held by `holding` of `chunks` chunks, ln(1 + (N - n + 0.5) / (n + 0.5)).';

-- A chunk's length: its words as the configuration counts them (stop words
-- out; every occurrence, up to 256 of one word).
CREATE OR REPLACE FUNCTION vk._word_count(doc tsvector) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce((SELECT sum(cardinality(w.positions)) FROM unnest(doc) w), 0);
COMMENT ON FUNCTION vk._word_count(tsvector) IS 'Internal: the words of a tsvector, every counted occurrence (BM25''s document length).';

-- Chunks written: their words, and counts to add. Each (collection, model)
-- gets a norm from its first chunks (their mean length); the norm's row is
-- held (FOR SHARE) until commit, so that vk.compact_keyword_stats_v1 changes
-- a norm and its impacts only between writers. (No temporary table for the
-- parsed words: one the caller made first under that name would be used.)
CREATE OR REPLACE FUNCTION vk._keyword_add(c_ids bigint[], m_ids bigint[], pks text[], chunks integer[], bodies text[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM unnest(c_ids, m_ids) a(c_id, m_id)
               WHERE NOT EXISTS (SELECT FROM vk.keyword_norms n WHERE n.collection_id = a.c_id AND n.model_id = a.m_id)) THEN
        INSERT INTO vk.keyword_norms (collection_id, model_id, norm)
        SELECT a.c_id, a.m_id, greatest(avg(vk._word_count(to_tsvector(c.text_search, a.body))), 1)
        FROM unnest(c_ids, m_ids, bodies) a(c_id, m_id, body)
        JOIN vk.collections c ON c.id = a.c_id
        GROUP BY 1, 2
        ON CONFLICT DO NOTHING;
    END IF;
    PERFORM FROM vk.keyword_norms n
    WHERE (n.collection_id, n.model_id) IN (SELECT * FROM unnest(c_ids, m_ids))
    ORDER BY n.collection_id, n.model_id
    FOR SHARE;
    WITH parsed AS (
        SELECT a.c_id, a.m_id, a.pk, a.chunk, d.doc, vk._word_count(d.doc) AS length, n.norm
        FROM unnest(c_ids, m_ids, pks, chunks, bodies) a(c_id, m_id, pk, chunk, body)
        JOIN vk.collections c ON c.id = a.c_id
        JOIN vk.keyword_norms n ON n.collection_id = a.c_id AND n.model_id = a.m_id,
        LATERAL (SELECT to_tsvector(c.text_search, a.body) AS doc) d),
    added AS (
        INSERT INTO vk.keyword_postings (collection_id, model_id, pk, chunk, term, tf, length, impact)
        SELECT p.c_id, p.m_id, p.pk, p.chunk, w.lexeme, cardinality(w.positions), p.length,
               vk._bm25_weight(cardinality(w.positions), p.length, p.norm)
        FROM parsed p, unnest(p.doc) w
        -- Words a chunk already has (its trigger was off once): counted once.
        ON CONFLICT DO NOTHING
        RETURNING collection_id, model_id, term, tf)
    INSERT INTO vk.keyword_stats (collection_id, model_id, term, chunks, words)
    SELECT collection_id, model_id, term, count(*), sum(tf) FROM added GROUP BY 1, 2, 3
    UNION ALL
    SELECT c_id, m_id, '', count(*), sum(length) FROM parsed GROUP BY 1, 2;
END
$$;
COMMENT ON FUNCTION vk._keyword_add(bigint[], bigint[], text[], integer[], text[]) IS
    'Internal: chunks written to vk.embeddings (parallel arrays): their words into vk.keyword_postings, their counts into vk.keyword_stats.';

-- Chunks gone: their words, and counts to take away (no text re-parsed:
-- the postings say what the chunk held).
CREATE OR REPLACE FUNCTION vk._keyword_remove(c_ids bigint[], m_ids bigint[], pks text[], chunks integer[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM vk.keyword_norms n
    WHERE (n.collection_id, n.model_id) IN (SELECT * FROM unnest(c_ids, m_ids))
    ORDER BY n.collection_id, n.model_id
    FOR SHARE;
    WITH gone AS (
        DELETE FROM vk.keyword_postings p
        USING unnest(c_ids, m_ids, pks, chunks) g(c_id, m_id, pk, chunk)
        WHERE p.collection_id = g.c_id AND p.model_id = g.m_id AND p.pk = g.pk AND p.chunk = g.chunk
        RETURNING p.collection_id, p.model_id, p.pk, p.chunk, p.term, p.tf, p.length),
    lengths AS (
        SELECT g.c_id, g.m_id, coalesce(min(x.length), 0) AS length
        FROM unnest(c_ids, m_ids, pks, chunks) g(c_id, m_id, pk, chunk)
        LEFT JOIN gone x ON x.collection_id = g.c_id AND x.model_id = g.m_id AND x.pk = g.pk AND x.chunk = g.chunk
        GROUP BY g.c_id, g.m_id, g.pk, g.chunk)
    INSERT INTO vk.keyword_stats (collection_id, model_id, term, chunks, words)
    SELECT collection_id, model_id, term, -count(*), -sum(tf) FROM gone GROUP BY 1, 2, 3
    UNION ALL
    SELECT c_id, m_id, '', -count(*), -sum(length) FROM lengths GROUP BY 1, 2;
END
$$;
COMMENT ON FUNCTION vk._keyword_remove(bigint[], bigint[], text[], integer[]) IS
    'Internal: chunks gone from vk.embeddings (parallel arrays): their words out of vk.keyword_postings, their counts out of vk.keyword_stats.';

-- The triggers. SECURITY DEFINER: whoever writes vk.embeddings (a worker,
-- an operator) keeps the statistics, which only vk's owner may write. On a
-- Citus shard they do nothing: keyword search there ranks as before BM25
-- (vk._keyword_sql), and these tables stay empty.
CREATE OR REPLACE FUNCTION vk._keyword_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'embeddings' THEN
        PERFORM vk._keyword_add(array_agg(n.collection_id), array_agg(n.model_id), array_agg(n.pk),
                                array_agg(n.chunk), array_agg(n.body))
        FROM vk_added n
        HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION vk._keyword_inserted() IS 'Trigger on vk.embeddings: new chunks'' words into the BM25 statistics.';

CREATE OR REPLACE FUNCTION vk._keyword_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'embeddings' THEN
        PERFORM vk._keyword_remove(array_agg(o.collection_id), array_agg(o.model_id), array_agg(o.pk), array_agg(o.chunk))
        FROM vk_removed o
        HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION vk._keyword_deleted() IS 'Trigger on vk.embeddings: deleted chunks'' words out of the BM25 statistics.';

-- An update counts only where a chunk's key or text changed (a worker's
-- upsert of the same text, a metadata change: nothing to do).
CREATE OR REPLACE FUNCTION vk._keyword_updated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'embeddings' THEN
        PERFORM vk._keyword_remove(array_agg(o.collection_id), array_agg(o.model_id), array_agg(o.pk), array_agg(o.chunk))
        FROM (SELECT collection_id, model_id, pk, chunk, body FROM vk_removed
              EXCEPT SELECT collection_id, model_id, pk, chunk, body FROM vk_added) o
        HAVING count(*) > 0;
        PERFORM vk._keyword_add(array_agg(n.collection_id), array_agg(n.model_id), array_agg(n.pk),
                                array_agg(n.chunk), array_agg(n.body))
        FROM (SELECT collection_id, model_id, pk, chunk, body FROM vk_added
              EXCEPT SELECT collection_id, model_id, pk, chunk, body FROM vk_removed) n
        HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION vk._keyword_updated() IS 'Trigger on vk.embeddings: chunks whose text changed, out of the BM25 statistics and back in.';

-- Statements of their own (Citus sends a distributed table's DDL to the
-- nodes as the text of its statement, which must not be this whole file).
DO $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);  -- a trigger on a Citus table
    END IF;
    EXECUTE 'CREATE OR REPLACE TRIGGER embeddings_keywords_inserted '
            'AFTER INSERT ON vk.embeddings REFERENCING NEW TABLE AS vk_added '
            'FOR EACH STATEMENT EXECUTE FUNCTION vk._keyword_inserted()';
END
$$;
DO $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    EXECUTE 'CREATE OR REPLACE TRIGGER embeddings_keywords_updated '
            'AFTER UPDATE ON vk.embeddings REFERENCING OLD TABLE AS vk_removed NEW TABLE AS vk_added '
            'FOR EACH STATEMENT EXECUTE FUNCTION vk._keyword_updated()';
END
$$;
DO $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    EXECUTE 'CREATE OR REPLACE TRIGGER embeddings_keywords_deleted '
            'AFTER DELETE ON vk.embeddings REFERENCING OLD TABLE AS vk_removed '
            'FOR EACH STATEMENT EXECUTE FUNCTION vk._keyword_deleted()';
END
$$;

-- Fold the counts: each (collection, model, word)'s rows into one (none when
-- they sum to nothing), and re-normalise a (collection, model) whose mean
-- chunk length moved more than 25 % from its norm while it is small enough
-- to rewrite (a million postings); a larger one keeps its norm, and searches
-- stay exact with wider bounds. Skips a norm a writer holds (SKIP LOCKED):
-- the next call does it. The worker calls it after each batch.
CREATE OR REPLACE FUNCTION vk.compact_keyword_stats_v1() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    folded bigint;
    n      record;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('vk.compact_keyword_stats_v1')) THEN
        RETURN 0;  -- another session is at it
    END IF;
    WITH many AS (
        SELECT collection_id, model_id, term FROM vk.keyword_stats GROUP BY 1, 2, 3 HAVING count(*) > 1),
    gone AS (
        DELETE FROM vk.keyword_stats s USING many
        WHERE (s.collection_id, s.model_id, s.term) = (many.collection_id, many.model_id, many.term)
        RETURNING s.*),
    kept AS (
        INSERT INTO vk.keyword_stats
        SELECT collection_id, model_id, term, sum(chunks), sum(words) FROM gone GROUP BY 1, 2, 3
        HAVING sum(chunks) <> 0
        RETURNING 1)
    SELECT count(*) INTO folded FROM gone;
    -- The norms of collections that are gone. Never a live one's, even with
    -- nothing left in it: a writer that found it may be about to use it.
    DELETE FROM vk.keyword_norms k WHERE NOT EXISTS (SELECT 1 FROM vk.collections c WHERE c.id = k.collection_id);
    FOR n IN
        SELECT k.collection_id, k.model_id, s.words::double precision / s.chunks AS avgdl
        FROM vk.keyword_norms k
        JOIN LATERAL (SELECT sum(x.chunks) AS chunks, sum(x.words) AS words FROM vk.keyword_stats x
                      WHERE x.collection_id = k.collection_id AND x.model_id = k.model_id AND x.term = '') s ON true
        WHERE s.chunks > 0 AND s.words > 0 AND s.words <= 1000000 * 20
          AND abs(ln(s.words::double precision / s.chunks / k.norm)) > ln(1.25)
        FOR UPDATE OF k SKIP LOCKED
    LOOP
        UPDATE vk.keyword_norms SET norm = n.avgdl WHERE collection_id = n.collection_id AND model_id = n.model_id;
        UPDATE vk.keyword_postings SET impact = vk._bm25_weight(tf, length, n.avgdl)
        WHERE collection_id = n.collection_id AND model_id = n.model_id;
    END LOOP;
    RETURN folded;
END
$$;
COMMENT ON FUNCTION vk.compact_keyword_stats_v1() IS
    'Worker contract 1: fold vk.keyword_stats'' rows (one per word per write) into one per word, and re-normalise small collections'' BM25 impacts when their mean chunk length moved; returns the rows folded. Any time, any session; results never depend on it, only their speed.';

-- Every chunk of a (collection, model) counted again from vk.embeddings:
-- after a change of the collection's text-search configuration (its words
-- change), for a database whose statistics were not kept (triggers disabled,
-- a restore without these tables).
CREATE OR REPLACE FUNCTION vk._recount_keywords(c_id bigint, m_id bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    -- Writers hold the norm FOR SHARE until they commit: wait for them, and
    -- keep new ones out until this count is in.
    PERFORM FROM vk.keyword_norms k WHERE k.collection_id = c_id AND k.model_id = m_id FOR UPDATE;
    DELETE FROM vk.keyword_postings WHERE collection_id = c_id AND model_id = m_id;
    DELETE FROM vk.keyword_stats WHERE collection_id = c_id AND model_id = m_id;
    SELECT count(*) INTO n FROM vk.embeddings e WHERE e.collection_id = c_id AND e.model_id = m_id;
    PERFORM vk._keyword_add(array_agg(e.collection_id), array_agg(e.model_id), array_agg(e.pk), array_agg(e.chunk),
                            array_agg(e.body))
    FROM vk.embeddings e WHERE e.collection_id = c_id AND e.model_id = m_id
    HAVING count(*) > 0;
    RETURN n;
END
$$;
COMMENT ON FUNCTION vk._recount_keywords(bigint, bigint) IS
    'Internal: a (collection, model)''s BM25 statistics counted again from its stored text; returns the chunks counted.';

CREATE OR REPLACE FUNCTION vk.rebuild_keyword_stats(collection text, model text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c vk.collections := vk._collection(collection);
    m vk.models := vk._collection_model(c, model);
BEGIN
    IF vk._citus_table('vk.embeddings') THEN
        RAISE EXCEPTION 'vectorkeep: BM25 statistics are kept on one server only, not on Citus'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Keyword search on Citus ranks without them (an idf per word with ts_rank_cd): nothing to rebuild.';
    END IF;
    RETURN vk._recount_keywords(c.id, m.id);
END
$$;
COMMENT ON FUNCTION vk.rebuild_keyword_stats(text, text) IS
    'Count a collection''s BM25 statistics again from its stored text (model: the default version when NULL); returns the chunks counted. Operators only; the triggers on vk.embeddings keep them current otherwise.';

-- The `depth` best rows of a (collection, model) for a query, by BM25, each
-- by its best chunk, filtered by `filter` (metadata containing it), without
-- scoring every chunk that holds a query word where it need not (a common
-- word is in most of them). Fagin's algorithm without random access while
-- reading (NRA), over the impact order:
--   - for each query word, its first `reach` postings by impact (an index
--     scan of keyword_postings_impact_idx, nothing else read);
--   - each chunk met scores at least what the words it was met in give it,
--     and at most that plus, for every other word, what that word's last
--     impact read can still give (its list read to the end: nothing);
--   - done when the depth-th best row's least is at least what a chunk not
--     met could score; then only the chunks whose most reaches it are
--     scored exactly (the primary key of vk.keyword_postings holds each
--     chunk's count of every query word). Else four times deeper.
-- Impacts were computed with vk.keyword_norms' norm, scores use the current
-- mean length: a weight under the one is within avgdl/norm (either way) of
-- the other, and the bounds widen by it. Where reading by rank would cover a
-- third of the longest list, or a filter is given, every posting of the
-- words is scored instead (a whole list reads about three times faster than
-- bounding what was met), and the filter checked in score order as far as
-- the depth-th row that passes.
-- So the result is BM25's own, ties aside, and the work follows how far the
-- words' best chunks stand out from the rest, at worst the words' postings.
CREATE OR REPLACE FUNCTION vk._keyword_bm25(c vk.collections, m vk.models, query text, depth integer, filter jsonb)
RETURNS TABLE (pk text, body text, score double precision, rank integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    terms      text[] := ARRAY(SELECT DISTINCT t FROM unnest(tsvector_to_array(to_tsvector(c.text_search, query))) t
                                ORDER BY 1);
    holding    double precision[];
    idfs       double precision[];
    all_chunks double precision;
    avgdl      double precision;
    lo         double precision;
    hi         double precision;
    reach      integer := greatest(depth, 10) * 4;
    rounds     integer := 0;
    bounded    boolean := false;
    pks        text[];
    at_chunks  integer[];
    scores     double precision[];
    by_score_pks    text[];
    by_score_chunks integer[];
    by_score_scores double precision[];
    best_of    integer := depth * 16;
    hit        record;
BEGIN
    SELECT sum(s.chunks), sum(s.words) INTO all_chunks, avgdl
    FROM vk.keyword_stats s WHERE s.collection_id = c.id AND s.model_id = m.id AND s.term = '';
    IF cardinality(terms) = 0 OR coalesce(all_chunks, 0) <= 0 OR coalesce(avgdl, 0) <= 0 THEN
        RETURN;  -- no word to look for, or nothing with words stored
    END IF;
    avgdl := avgdl / all_chunks;
    SELECT least(1, avgdl / n.norm), greatest(1, avgdl / n.norm) INTO lo, hi
    FROM vk.keyword_norms n WHERE n.collection_id = c.id AND n.model_id = m.id;
    holding := ARRAY(
        SELECT coalesce((SELECT sum(s.chunks) FROM vk.keyword_stats s
                         WHERE s.collection_id = c.id AND s.model_id = m.id AND s.term = t.term), 0)
        FROM unnest(terms) WITH ORDINALITY t(term, i) ORDER BY t.i);
    idfs := ARRAY(SELECT vk._bm25_idf(all_chunks, h.n) FROM unnest(holding) WITH ORDINALITY h(n, i) ORDER BY h.i);
    -- With a filter, every chunk is scored and the filter checked in score order
    -- (below): bounds would have to look up the stored row of each chunk met.
    WHILE filter IS NULL AND NOT bounded AND reach * 3 < (SELECT max(h) FROM unnest(holding) h) LOOP
        rounds := rounds + 1;
        WITH q AS (SELECT * FROM unnest(terms, idfs) WITH ORDINALITY q(term, idf, i)),
        heads AS (
            SELECT q.i, h.pk, h.chunk, q.idf * h.impact AS part
            FROM q CROSS JOIN LATERAL (
                SELECT p.pk, p.chunk, p.impact FROM vk.keyword_postings p
                WHERE p.collection_id = c.id AND p.model_id = m.id AND p.term = q.term
                ORDER BY p.impact DESC LIMIT reach) h),
        -- What each word can still give a chunk its list was not read to: its reach-th
        -- impact (one more step of the same index scan), 0 where the list is shorter.
        edges AS MATERIALIZED (
            SELECT q.i, coalesce(q.idf * hi * (SELECT p.impact FROM vk.keyword_postings p
                                                 WHERE p.collection_id = c.id AND p.model_id = m.id AND p.term = q.term
                                                 ORDER BY p.impact DESC OFFSET reach - 1 LIMIT 1), 0) AS rest
            FROM q),
        met AS MATERIALIZED (
            SELECT h.pk, h.chunk, sum(h.part) * lo AS least,
                   sum(h.part) * hi + ((SELECT sum(e.rest) FROM edges e) - sum(e.rest)) AS most
            FROM heads h JOIN edges e ON e.i = h.i
            GROUP BY h.pk, h.chunk),
        floor AS MATERIALIZED (
            SELECT min(b.least) AS least, count(*) AS rows FROM (
                SELECT max(t.least) AS least FROM met t GROUP BY t.pk ORDER BY 1 DESC LIMIT depth) b),
        -- A stored impact is a real: a hair of slack for its rounding, and for sums
        -- whose order differs.
        verdict AS MATERIALIZED (
            SELECT f.least, f.rows >= depth AND f.least * (1 + 1e-6) >= (SELECT sum(e.rest) FROM edges e) AS bounded
            FROM floor f)
        SELECT v.bounded,
               (SELECT array_agg(t.pk) FROM met t WHERE v.bounded AND t.most * (1 + 1e-6) >= v.least),
               (SELECT array_agg(t.chunk) FROM met t WHERE v.bounded AND t.most * (1 + 1e-6) >= v.least)
        INTO bounded, pks, at_chunks FROM verdict v;
        IF NOT bounded THEN
            reach := reach * 4;
        END IF;
    END LOOP;
    -- SET client_min_messages = debug1 shows how a query was answered.
    RAISE DEBUG 'vectorkeep: BM25 read % postings of each of % words in % rounds, then scored %', reach,
        cardinality(terms), rounds, CASE WHEN bounded THEN format('the %s chunks that could enter', cardinality(pks))
                                         ELSE 'every chunk holding a word' END;
    IF NOT bounded AND filter IS NOT NULL THEN
        -- Every chunk scored, then the filter checked in score order on the best
        -- `best_of` only (a top-N sort), as many as the depth-th row that passes
        -- needs (eight times more each time it was not enough): a filter that most
        -- rows pass reads a few stored rows, not one per chunk holding a word.
        LOOP
            SELECT array_agg(s.pk), array_agg(s.chunk), array_agg(s.score)
            INTO by_score_pks, by_score_chunks, by_score_scores
            FROM (SELECT p.pk, p.chunk, sum(q.idf * vk._bm25_weight(p.tf, p.length, avgdl)) AS score
                  FROM unnest(terms, idfs) q(term, idf)
                  JOIN vk.keyword_postings p ON p.collection_id = c.id AND p.model_id = m.id AND p.term = q.term
                  GROUP BY p.pk, p.chunk ORDER BY 3 DESC, 1 LIMIT best_of) s;
            pks := '{}';
            at_chunks := '{}';
            scores := '{}';
            -- In the order of the list (a semi-join keeps no order of its own).
            FOR hit IN
                SELECT t.pk, t.chunk, t.score
                FROM unnest(by_score_pks, by_score_chunks, by_score_scores) WITH ORDINALITY t(pk, chunk, score, i)
                WHERE EXISTS (SELECT FROM vk.embeddings e
                              WHERE e.collection_id = c.id AND e.model_id = m.id AND e.pk = t.pk AND e.chunk = t.chunk
                                AND e.metadata @> filter)
                ORDER BY t.i
            LOOP
                CONTINUE WHEN hit.pk = ANY (pks);  -- a row by its best chunk that passes
                pks := pks || hit.pk;
                at_chunks := at_chunks || hit.chunk;
                scores := scores || hit.score;
                EXIT WHEN cardinality(pks) >= depth;
            END LOOP;
            EXIT WHEN cardinality(pks) >= depth OR coalesce(cardinality(by_score_pks), 0) < best_of;
            best_of := best_of * 8;
        END LOOP;
    ELSE
        WITH q AS (SELECT * FROM unnest(terms, idfs) q(term, idf)),
        scored AS (
            SELECT p.pk, p.chunk, sum(q.idf * vk._bm25_weight(p.tf, p.length, avgdl)) AS score
            FROM q JOIN vk.keyword_postings p ON p.collection_id = c.id AND p.model_id = m.id AND p.term = q.term
            WHERE NOT bounded
            GROUP BY p.pk, p.chunk
            UNION ALL
            -- The chunks that could enter.
            SELECT t.pk, t.chunk, s.score
            FROM unnest(pks, at_chunks) t(pk, chunk),
            LATERAL (SELECT sum(q.idf * vk._bm25_weight(p.tf, p.length, avgdl)) AS score
                     FROM vk.keyword_postings p JOIN q ON q.term = p.term
                     WHERE p.collection_id = c.id AND p.model_id = m.id AND p.pk = t.pk AND p.chunk = t.chunk
                       AND p.term = ANY (terms)) s
            WHERE bounded),
        best AS (SELECT DISTINCT ON (s.pk) s.pk, s.chunk, s.score FROM scored s ORDER BY s.pk, s.score DESC),
        ranked AS (SELECT * FROM best b ORDER BY b.score DESC, b.pk LIMIT depth)
        SELECT array_agg(r.pk ORDER BY r.score DESC, r.pk), array_agg(r.chunk ORDER BY r.score DESC, r.pk),
               array_agg(r.score ORDER BY r.score DESC, r.pk)
        INTO pks, at_chunks, scores FROM ranked r;
    END IF;
    -- The text, for the rows returned only.
    RETURN QUERY
        SELECT r.pk, e.body, r.score, r.i::integer
        FROM unnest(pks, at_chunks, scores) WITH ORDINALITY r(pk, chunk, score, i)
        JOIN vk.embeddings e ON e.collection_id = c.id AND e.model_id = m.id AND e.pk = r.pk AND e.chunk = r.chunk
        ORDER BY r.i;
END
$$;
COMMENT ON FUNCTION vk._keyword_bm25(vk.collections, vk.models, text, integer, jsonb) IS
    'Internal: the depth best rows of a (collection, model) for a query by BM25 (each by its best chunk; filter: metadata containing it), with their scores and ranks, read in impact order until nothing unread could enter, or from every posting of the words where that reads less.';
