-- Indexes of vk.embeddings: each (collection, model version) has an HNSW index
-- (its operator class from the version's distance and storage) and a keyword
-- (GIN) index, partial on the pair; their names, the statements that build
-- them, where they stand, and how a reembed job builds the ones it deferred.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

CREATE OR REPLACE FUNCTION vk._opclass(distance text, storage text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN storage || CASE distance WHEN 'cosine' THEN '_cosine_ops' WHEN 'l2' THEN '_l2_ops' WHEN 'ip' THEN '_ip_ops' END;
COMMENT ON FUNCTION vk._opclass(text, text) IS
    'Internal: pgvector''s HNSW operator class for a distance (cosine, l2, ip) and a storage (vector, halfvec).';

CREATE OR REPLACE FUNCTION vk._operator(distance text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE distance WHEN 'cosine' THEN '<=>' WHEN 'l2' THEN '<->' WHEN 'ip' THEN '<#>' END;
COMMENT ON FUNCTION vk._operator(text) IS 'Internal: pgvector''s distance operator for a distance (cosine, l2, ip).';

-- pgvector's HNSW indexes vector up to 2,000 dimensions, halfvec up to 4,000.
CREATE OR REPLACE FUNCTION vk._indexable(m vk.models) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN m.dim <= CASE m.storage WHEN 'halfvec' THEN 4000 ELSE 2000 END;
COMMENT ON FUNCTION vk._indexable(vk.models) IS
    'Internal: whether pgvector''s HNSW can index the version (vector: 2,000 dimensions at most; halfvec: 4,000).';

CREATE OR REPLACE FUNCTION vk._hnsw_index_name(c_id bigint, m_id bigint) RETURNS name
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format('embeddings_c%s_m%s_hnsw', c_id, m_id);
COMMENT ON FUNCTION vk._hnsw_index_name(bigint, bigint) IS 'Internal: the name of the HNSW index of a (collection, model).';

-- The one statement that builds a (collection, model)'s HNSW index; search
-- (vk._nearest_sql) casts to the same type so the planner matches it.
CREATE OR REPLACE FUNCTION vk._hnsw_index_sql(c_id bigint, m vk.models, concurrent boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format('CREATE INDEX %s IF NOT EXISTS %I ON vk.embeddings USING hnsw ((embedding::%s(%s)) %s) '
                  'WHERE collection_id = %s AND model_id = %s',
                  CASE WHEN concurrent THEN 'CONCURRENTLY' ELSE '' END,
                  vk._hnsw_index_name(c_id, m.id), m.storage, m.dim, vk._opclass(m.distance, m.storage), c_id, m.id)
$$;
COMMENT ON FUNCTION vk._hnsw_index_sql(bigint, vk.models, boolean) IS
    'Internal: the CREATE INDEX statement of a (collection, model)''s partial HNSW expression index, in the version''s storage.';

CREATE OR REPLACE FUNCTION vk._keyword_index_name(c_id bigint, m_id bigint) RETURNS name
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format('embeddings_c%s_m%s_fts', c_id, m_id);
COMMENT ON FUNCTION vk._keyword_index_name(bigint, bigint) IS
    'Internal: the name of the full-text (GIN) index of a (collection, model).';

-- The full-text index of a (collection, model), for keyword ranking over its stored text.
CREATE OR REPLACE FUNCTION vk._keyword_index_sql(c_id bigint, m_id bigint, config regconfig, concurrent boolean)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format('CREATE INDEX %s IF NOT EXISTS %I ON vk.embeddings USING gin (to_tsvector(%L::regconfig, body)) '
                  'WHERE collection_id = %s AND model_id = %s',
                  CASE WHEN concurrent THEN 'CONCURRENTLY' ELSE '' END,
                  vk._keyword_index_name(c_id, m_id), config, c_id, m_id)
$$;
COMMENT ON FUNCTION vk._keyword_index_sql(bigint, bigint, regconfig, boolean) IS
    'Internal: the CREATE INDEX statement of a (collection, model)''s full-text (GIN) index over its stored text.';

-- Every index of a (collection, model) with the statement that builds it: its
-- HNSW index (unless over HNSW's dimensions) and its keyword index. A backfill
-- defers both: one bulk build each is many times faster than maintaining them
-- row by row (the keyword index alone halves the rate of plain INSERTs).
CREATE OR REPLACE FUNCTION vk._index_statements(c vk.collections, m vk.models, concurrent boolean)
RETURNS TABLE (index_name name, statement text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT vk._hnsw_index_name(c.id, m.id), vk._hnsw_index_sql(c.id, m, concurrent) WHERE vk._indexable(m)
    UNION ALL
    SELECT vk._keyword_index_name(c.id, m.id), vk._keyword_index_sql(c.id, m.id, c.text_search, concurrent)
$$;
COMMENT ON FUNCTION vk._index_statements(vk.collections, vk.models, boolean) IS
    'Internal: the indexes of a (collection, model), HNSW and keyword, each with its CREATE INDEX statement.';

-- Where a (collection, model)'s indexes stand: valid (searches use them),
-- building (CREATE INDEX CONCURRENTLY under way, or left invalid by one that
-- failed), deferred (a backfill is writing the vectors; its job builds the
-- indexes once they are written), or exact (too many dimensions for HNSW;
-- its keyword index is there).
CREATE OR REPLACE FUNCTION vk._index_state(c_id bigint, m vk.models) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN bool_or(i.indexrelid IS NULL) THEN 'deferred'
                WHEN NOT bool_and(i.indisvalid AND i.indisready) THEN 'building'
                WHEN NOT vk._indexable(m) THEN 'exact'
                ELSE 'valid' END
    FROM unnest(ARRAY[vk._hnsw_index_name(c_id, m.id), vk._keyword_index_name(c_id, m.id)]) n(name)
    LEFT JOIN pg_class ix ON ix.relname = n.name AND ix.relnamespace = 'vk'::regnamespace
    LEFT JOIN pg_index i ON i.indexrelid = ix.oid
    WHERE vk._indexable(m) OR n.name <> vk._hnsw_index_name(c_id, m.id)
$$;
COMMENT ON FUNCTION vk._index_state(bigint, vk.models) IS
    'Internal: a (collection, model)''s HNSW and keyword indexes: valid, building, deferred (its backfill job builds them) or exact (over HNSW''s dimensions).';

-- Each index of a (collection, model) with its CREATE statement and where it
-- stands: present, valid, or being built right now by some session.
CREATE OR REPLACE FUNCTION vk._index_builds(c vk.collections, m vk.models, concurrent boolean)
RETURNS TABLE (index_name name, statement text, present boolean, valid boolean, in_progress boolean)
LANGUAGE sql STABLE AS $$
    SELECT x.index_name, x.statement, i.indexrelid IS NOT NULL, coalesce(i.indisvalid AND i.indisready, false),
           EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid)
    FROM vk._index_statements(c, m, concurrent) x
    LEFT JOIN pg_class cl ON cl.relname = x.index_name AND cl.relnamespace = 'vk'::regnamespace
    LEFT JOIN pg_index i ON i.indexrelid = cl.oid
$$;
COMMENT ON FUNCTION vk._index_builds(vk.collections, vk.models, boolean) IS
    'Internal: each index of a (collection, model) with its CREATE statement, whether it is present and valid, and whether a build of it is under way.';

-- Worker contract: how a reembed job builds the indexes it deferred. A role
-- that owns vk.embeddings (the embedded default's) builds them with CREATE
-- INDEX CONCURRENTLY, which blocks no writer (unless the table is
-- partitioned, docs/partition-embeddings.sql); any other calls
-- vk.build_index_v1, whose plain CREATE INDEX holds back writes to
-- vk.embeddings until it ends. statements: what is left to do, in order (an
-- index a failed build left invalid is dropped first); state: building while
-- another session builds one of them, else vk._index_state.
CREATE OR REPLACE FUNCTION vk.index_plan_v1(c_id bigint, m_id bigint)
RETURNS TABLE (state text, statements text[], concurrent boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c        vk.collections := vk.collection_v1(c_id);
    m        vk.models := vk.model_v1(m_id);
    ix       record;
    todo     text[] := '{}';
    building boolean := false;
    owner    boolean;
BEGIN
    -- PostgreSQL builds no index concurrently on a partitioned table.
    SELECT pg_has_role(session_user, t.relowner, 'MEMBER') AND t.relkind = 'r' INTO owner
    FROM pg_class t WHERE t.oid = 'vk.embeddings'::regclass;
    FOR ix IN SELECT * FROM vk._index_builds(c, m, owner) LOOP
        IF NOT ix.present THEN
            todo := todo || ix.statement;
        ELSIF ix.in_progress THEN
            building := true;
        ELSIF NOT ix.valid THEN
            todo := todo || format('DROP INDEX %s IF EXISTS vk.%I', CASE WHEN owner THEN 'CONCURRENTLY' ELSE '' END,
                                   ix.index_name) || ix.statement;
        END IF;
    END LOOP;
    RETURN QUERY SELECT CASE WHEN building THEN 'building' ELSE vk._index_state(c_id, m) END, todo, owner;
END
$$;
COMMENT ON FUNCTION vk.index_plan_v1(bigint, bigint) IS
    'Worker contract 1 (revision 0014): where a (collection, model)''s deferred indexes (HNSW, keyword) stand, the statements that build what is missing (CREATE INDEX CONCURRENTLY when the caller owns vk.embeddings), and whether the caller may run them itself.';

CREATE OR REPLACE FUNCTION vk.build_index_v1(c_id bigint, m_id bigint) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c    vk.collections := vk.collection_v1(c_id);
    m    vk.models := vk.model_v1(m_id);
    ix   record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM vk.collection_models cm WHERE cm.collection_id = c_id AND cm.model_id = m_id) THEN
        RAISE EXCEPTION 'vectorkeep: collection % is not embedded with model %', c_id, m_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- maintenance_work_mem and max_parallel_maintenance_workers are the caller's session settings.
    FOR ix IN SELECT * FROM vk._index_builds(c, m, false) LOOP
        IF ix.in_progress THEN
            RETURN 'building';  -- another session's build
        ELSIF ix.present AND NOT ix.valid THEN
            EXECUTE format('DROP INDEX IF EXISTS vk.%I', ix.index_name);
        END IF;
        EXECUTE ix.statement;
    END LOOP;
    RETURN vk._index_state(c_id, m);
END
$$;
COMMENT ON FUNCTION vk.build_index_v1(bigint, bigint) IS
    'Worker contract 1 (revision 0014): build a (collection, model)''s deferred HNSW and keyword indexes with plain CREATE INDEX (writes to vk.embeddings wait for it), with the caller''s maintenance_work_mem and max_parallel_maintenance_workers; returns the index state.';
