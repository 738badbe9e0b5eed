-- After revision 0011's downgrade (down.sql), on a server without dblink:
-- 0011 created schema vk_dblink and could not install dblink in it. The
-- empty schema goes, so that upgrading again can create it again (0011's
-- run-once file creates it whenever dblink is not installed). A schema that
-- holds anything, or that someone else owns, stays.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = 'vk_dblink' AND pg_has_role(n.nspowner, 'USAGE'))
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                       WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = 'vk_dblink'::regnamespace) THEN
        DROP SCHEMA vk_dblink;
    END IF;
END
$$;
