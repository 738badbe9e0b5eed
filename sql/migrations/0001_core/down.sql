-- Undo revision 0001. Dropping the schema also drops the vk_* triggers that
-- attach() put on user tables (they depend on vk's functions); the tables and
-- their rows stay. pgvector goes only if this migration created it and
-- nothing else uses it.
DROP SCHEMA vk CASCADE;

DO $$
BEGIN
    IF (SELECT obj_description(e.oid, 'pg_extension') FROM pg_extension e WHERE e.extname = 'vector')
       LIKE '%(installed by vectorkeep)' THEN
        BEGIN
            DROP EXTENSION vector;
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE 'vectorkeep: kept extension vector, other objects use it';
        END;
    END IF;
END
$$;
