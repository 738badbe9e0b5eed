-- Comments belong to the definitions as much as the bodies do, but CREATE OR
-- REPLACE keeps a function's old comment: every re-apply therefore starts by
-- clearing them, so that a comment removed from a file is removed from the
-- database too (grants likewise start from nothing in 99_privileges.sql).
-- A collection's generated INSERT trigger function keeps its own.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = 'vk'::regnamespace AND p.proname !~ '^_?on_insert_c[0-9]+$' LOOP
        EXECUTE format('COMMENT ON FUNCTION %s IS NULL', f);
    END LOOP;
    IF to_regclass('vk.status') IS NOT NULL THEN
        COMMENT ON VIEW vk.status IS NULL;
    END IF;
END
$$;
