-- pgvector, created only when missing; the comment marks it as ours so that
-- idempotent: does nothing when pgvector is already there.
-- down.sql drops only what this migration created.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        BEGIN
            CREATE EXTENSION vector;
        EXCEPTION WHEN insufficient_privilege OR undefined_file THEN
            RAISE EXCEPTION 'vectorkeep needs the pgvector extension: %', SQLERRM
                USING HINT = 'Install pgvector >= 0.7 and have a superuser run CREATE EXTENSION vector; in this database.';
        END;
        COMMENT ON EXTENSION vector IS 'vector data type and ivfflat and hnsw access methods (installed by vectorkeep)';
    END IF;
END
$$;
