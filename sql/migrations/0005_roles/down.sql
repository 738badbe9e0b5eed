-- Undo revision 0005: functions run as their caller again, the grants go.
-- The roles stay (they belong to the cluster; DROP ROLE them once no database uses them).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = 'vk'::regnamespace AND p.prosecdef LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY INVOKER RESET search_path', f);
    END LOOP;
END
$$;
REVOKE ALL ON ALL TABLES IN SCHEMA vk FROM vk_app, vk_worker, vk_admin;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA vk FROM vk_app, vk_worker, vk_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA vk FROM vk_app, vk_worker, vk_admin;
REVOKE ALL ON SCHEMA vk FROM vk_app, vk_worker, vk_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA vk TO PUBLIC;
