-- vectorkeep 0011: search as users need it. Run once by revision 0011_search,
-- before the current definitions; undone by down.sql.

-- Metadata: an SQL expression over the source row (run with its author's
-- rights, vk_expr.meta_c<id>) whose jsonb is kept beside the row's vectors
-- and filters searches. Keyword search: one text-search configuration per
-- collection.
ALTER TABLE vk.collections
    ADD COLUMN metadata_expression text,
    ADD COLUMN metadata_registered_by name,
    ADD COLUMN text_search regconfig NOT NULL DEFAULT 'pg_catalog.english';
COMMENT ON COLUMN vk.collections.metadata_expression IS
    'SQL expression over the source row returning a jsonb object, stored beside the row''s vectors (vk.embeddings.metadata) and used by filter => in searches.';
COMMENT ON COLUMN vk.collections.metadata_registered_by IS
    'The role that set the metadata expression: it runs with its rights (vk_expr.meta_c<id>).';
COMMENT ON COLUMN vk.collections.text_search IS
    'The text-search configuration of keyword ranking (vk.hybrid_search) over the stored text; one GIN index per (collection, model).';

-- Every chunk carries its row's metadata, so that one index scan filters and
-- orders at once (pgvector's iterative scans). The claim computes it into the
-- queue row, and the vector's write copies it from there.
ALTER TABLE vk.embeddings ADD COLUMN metadata jsonb;
COMMENT ON COLUMN vk.embeddings.metadata IS
    'The row''s metadata (vk.collections.metadata_expression), kept current without re-embedding.';
ALTER TABLE vk.queue ADD COLUMN metadata jsonb;
COMMENT ON COLUMN vk.queue.metadata IS
    'The row''s metadata as the claim read it, written with its vectors.';
-- Filters too selective for the vector index are answered exactly from this
-- one. No pending list (fastupdate): every filtered search would read it all,
-- and vectors are written in batches by workers, not by applications.
CREATE INDEX embeddings_metadata ON vk.embeddings USING gin (metadata jsonb_path_ops)
    WITH (fastupdate = off) WHERE metadata IS NOT NULL;

-- Keyword search over the stored text of every (collection, model) already embedded.
DO $$
DECLARE
    cm record;
BEGIN
    FOR cm IN SELECT x.collection_id, x.model_id FROM vk.collection_models x LOOP
        EXECUTE format(
            'CREATE INDEX %I ON vk.embeddings USING gin (to_tsvector(%L::regconfig, body)) '
            'WHERE collection_id = %s AND model_id = %s',
            format('embeddings_c%s_m%s_fts', cm.collection_id, cm.model_id),
            'pg_catalog.english', cm.collection_id, cm.model_id);
    END LOOP;
END
$$;

-- Text queries (vk.embed): a request travels outside the caller's transaction
-- (dblink), a worker's interactive lane answers it into the cache, and the
-- request (with its text) is deleted.
CREATE TABLE vk.embed_requests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id     bigint NOT NULL REFERENCES vk.models (id) ON DELETE CASCADE,
    text_sha256  bytea NOT NULL,
    input        text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    error        text
);
COMMENT ON TABLE vk.embed_requests IS
    'Text queries waiting for a worker (vk.embed); deleted when answered, or after their caller''s timeout.';
CREATE TABLE vk.embed_cache (
    model_id    bigint NOT NULL REFERENCES vk.models (id) ON DELETE CASCADE,
    text_sha256 bytea NOT NULL,
    embedding   vector NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, text_sha256)
);
COMMENT ON TABLE vk.embed_cache IS
    'Vectors of recent text queries by model version and text hash (no text): kept one hour, at most 10,000.';
CREATE INDEX embed_cache_created_at ON vk.embed_cache (created_at);

-- Searches gain filter => (new signatures: the old ones would make calls ambiguous).
DROP FUNCTION vk.search(text, vector, integer, text);
DROP FUNCTION vk.search_chunks(text, vector, integer, text);
DROP FUNCTION vk.similar(text, text, integer, text);
-- One query builder (vk._nearest_sql) for rows, chunks, filtered and exact.
DROP FUNCTION vk._knn_rows_sql(vk.collections, vk.models);
DROP FUNCTION vk._knn_chunks_sql(bigint, vk.models, text);
DROP FUNCTION vk._knn_sql(bigint, vk.models);
CREATE TYPE vk._neighbour AS (
    pk text, chunk integer, start_char integer, end_char integer, body text, distance double precision
);
COMMENT ON TYPE vk._neighbour IS 'Internal: one result of vk._nearest (a row, or a chunk of one, and its distance).';
-- vk.attach gains metadata => and text_search =>.
DROP FUNCTION vk.attach(regclass, text, text, text, text, text);
-- Contract 0's wrappers, deprecated by 0009, go one release later as announced.
DROP FUNCTION vk.collection(text);
DROP FUNCTION vk.collection_model(vk.collections, text);

-- dblink carries text queries out of the caller's transaction. In a schema
-- of its own that only vk's owner may use: no caller can reach the
-- connections vk opens. Where the extension is not available (or not
-- permitted), text queries say how to enable it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'dblink') THEN
        CREATE SCHEMA vk_dblink;
        REVOKE ALL ON SCHEMA vk_dblink FROM PUBLIC;
        COMMENT ON SCHEMA vk_dblink IS 'vectorkeep: dblink, for text queries (vk.embed); for vk''s owner only.';
        BEGIN
            CREATE EXTENSION dblink SCHEMA vk_dblink;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'vectorkeep: dblink is not available (%): text queries need it (see the README, "Text queries")', SQLERRM;
        END;
    END IF;
END
$$;
