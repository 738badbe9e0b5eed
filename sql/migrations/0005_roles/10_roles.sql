-- vectorkeep 0005: roles. Group roles (NOLOGIN) that login roles join:
--   vk_app     applications: write their tables and vk.documents, search and recover; never models, jobs or vectors
--   vk_worker  workers: embed, train, re-embed, recover
--   vk_admin   operators: everything in schema vk
-- Roles belong to the whole cluster: they are created when missing and kept by
-- the downgrade (other databases may use them).
-- idempotent: creates only what is missing.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['vk_app', 'vk_worker', 'vk_admin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'vectorkeep: creating the roles vk_app, vk_worker and vk_admin needs CREATEROLE'
        USING HINT = 'Have an administrator create them (CREATE ROLE vk_app NOLOGIN; ...), then migrate again.';
END
$$;
