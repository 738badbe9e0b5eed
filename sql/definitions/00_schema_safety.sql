-- No role runs code as the owner. Functions that run as vk's owner (SECURITY
-- DEFINER, and those its loopback connection runs) fix their search_path to
-- pg_catalog, pgvector's schema and pg_temp. A role that may create objects
-- in pgvector's schema could put there a function that wins the overload
-- resolution of a built-in one (public.convert_to(text, text) against
-- pg_catalog.convert_to(text, name)) and have it run as the owner. So no
-- role other than the owner (and superusers) may create there: every
-- upgrade refuses to go on otherwise, and `vectorkeep schema check` and
-- `vectorkeep health` look again.
--
-- Current definitions: every upgrade re-applies this file.

CREATE OR REPLACE FUNCTION vk._schema_creators(schema_name name) RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    -- PUBLIC, and every login role that may CREATE there (itself or through a
    -- group) without being a superuser or able to act as vk's owner already.
    SELECT 'PUBLIC' FROM pg_namespace n, aclexplode(n.nspacl) a
    WHERE n.nspname = schema_name AND a.grantee = 0 AND a.privilege_type = 'CREATE'
    UNION ALL
    SELECT r.rolname::text FROM pg_roles r, pg_namespace n
    WHERE n.nspname = schema_name AND r.rolcanlogin AND NOT r.rolsuper
      AND has_schema_privilege(r.oid, n.oid, 'CREATE')
      AND NOT pg_has_role(r.oid, coalesce((SELECT v.nspowner FROM pg_namespace v WHERE v.nspname = 'vk'),
                                          (SELECT u.oid FROM pg_roles u WHERE u.rolname = current_user)), 'MEMBER')
$$;
COMMENT ON FUNCTION vk._schema_creators(name) IS
    'Internal: who, besides vk''s owner and superusers, may create objects in a schema (PUBLIC, or login roles): none may in pgvector''s schema, which owner-run functions search.';

DO $$
DECLARE
    vector_schema name;
    creators      text;
BEGIN
    SELECT n.nspname INTO vector_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    SELECT string_agg(c, ', ') INTO creators FROM vk._schema_creators(vector_schema) c;
    IF creators IS NOT NULL THEN
        RAISE EXCEPTION 'vectorkeep: % may create objects in schema %, where pgvector is: vectorkeep''s owner-run functions search it, so they could run that code as their owner',
                creators, vector_schema
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('Take the right back (REVOKE CREATE ON SCHEMA %I FROM %s;), or move pgvector to a schema '
                                'only its owner writes (CREATE SCHEMA vector_ext; ALTER EXTENSION vector SET SCHEMA vector_ext;), '
                                'then migrate again.', vector_schema, creators);
    END IF;
END
$$;
