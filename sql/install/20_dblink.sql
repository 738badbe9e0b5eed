-- A fresh install's dblink (as revision 0011 brought it): it carries text
-- queries out of the caller's transaction. In a schema of its own that only
-- vk's owner may use: no caller can reach the connections vk opens. Where the
-- extension is not available (or not permitted), text queries say how to
-- enable it.
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
