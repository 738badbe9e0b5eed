-- Partition vk.embeddings by model version (LIST on model_id), in place.
--
-- Run it as the owner of schema vk (or a superuser), in one transaction:
--
--     psql "$VECTORKEEP_DATABASE_URL" -v ON_ERROR_STOP=1 -1 -f docs/partition-embeddings.sql
--
-- What it does (tests/test_partitioning.py runs this file and checks each point):
--
-- * vk.embeddings becomes a table PARTITIONED BY LIST (model_id), with one
--   partition per model version that has vectors or is embedded for a
--   collection (vk.embeddings_m<model id>), and a DEFAULT partition
--   (vk.embeddings_default) where versions registered later land.
-- * Every row moves over unchanged; the table keeps its columns, defaults,
--   checks, comments, primary key (collection_id, pk, model_id, chunk),
--   foreign keys, triggers, row-level security policies, grants and owner.
-- * Each (collection, model) HNSW and keyword index is built on its model's
--   partition only, under the name vk.collection_models.index_name records,
--   so vk.search / vk.similar / vk.recover (whose WHERE collection_id = C AND
--   model_id = M literals prune to that partition) use it, and vk.activate,
--   vk.retire and vk.detach find it by name. Indexes without a model
--   (embeddings_metadata) are built on the parent, so on every partition.
-- * Views over vk.embeddings (vk.status) are re-pointed at the new table with
--   CREATE OR REPLACE VIEW, keeping their grants, options and comments.
--
-- It takes an ACCESS EXCLUSIVE lock on vk.embeddings for the copy and the
-- index builds: writers and searches wait. Running it again is a no-op.
--
-- After it: a version registered later (vk.add_model, a train job) keeps
-- working with no step from you; its rows go to vk.embeddings_default and
-- vk.embed_with_v1 builds its partial indexes on the parent, so PostgreSQL
-- also makes an (empty) partial index on every other partition. See
-- docs/scale-out.md, "Partitioning vk.embeddings by model version".

DO $partition$
DECLARE
    old_name constant text := 'embeddings_unpartitioned';
    rel pg_class;
    triggers text[];
    policies text[];
    views record;
    view_defs text[] := '{}';
    fks text[];
    ix record;
    model_ids bigint[];
    m bigint;
    statement text;
BEGIN
    SELECT * INTO rel FROM pg_class WHERE oid = 'vk.embeddings'::regclass;
    IF rel.relkind = 'p' THEN
        RAISE NOTICE 'vk.embeddings is already partitioned: nothing to do';
        RETURN;
    END IF;
    LOCK TABLE vk.embeddings IN ACCESS EXCLUSIVE MODE;
    -- Nothing may register a (collection, model) index while we move: it waits on this lock.
    LOCK TABLE vk.collection_models IN SHARE MODE;

    -- 1. What the table carries, read while its name is still vk.embeddings
    --    (pg_get_*def print it schema-qualified under this search_path).
    PERFORM set_config('search_path', 'pg_catalog', true);
    SELECT coalesce(array_agg(pg_get_triggerdef(t.oid) ORDER BY t.tgname), '{}') INTO triggers
    FROM pg_trigger t WHERE t.tgrelid = rel.oid AND NOT t.tgisinternal;
    SELECT coalesce(array_agg(format('ALTER TABLE vk.embeddings ADD CONSTRAINT %I %s', c.conname,
                                     pg_get_constraintdef(c.oid)) ORDER BY c.conname), '{}') INTO fks
    FROM pg_constraint c WHERE c.conrelid = rel.oid AND c.contype = 'f';
    SELECT coalesce(array_agg(format('CREATE POLICY %I ON vk.embeddings AS %s FOR %s TO %s%s%s',
                                     p.policyname, p.permissive, p.cmd,
                                     (SELECT string_agg(CASE r WHEN 'public' THEN 'public' ELSE quote_ident(r) END, ', ')
                                      FROM unnest(p.roles) r),
                                     ' USING (' || p.qual || ')', ' WITH CHECK (' || p.with_check || ')')
                              ORDER BY p.policyname), '{}') INTO policies
    FROM pg_policies p WHERE p.schemaname = 'vk' AND p.tablename = 'embeddings';
    FOR views IN
        SELECT DISTINCT v.oid, v.reloptions
        FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class
        WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = rel.oid AND v.oid <> rel.oid
    LOOP
        view_defs := view_defs || format('CREATE OR REPLACE VIEW %s%s AS %s', views.oid::regclass,
                                         ' WITH (' || array_to_string(views.reloptions, ', ') || ')',
                                         pg_get_viewdef(views.oid));
    END LOOP;
    CREATE TEMPORARY TABLE vk_partition_indexes ON COMMIT DROP AS
    SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition,
           (regexp_match(pg_get_expr(x.indpred, x.indrelid), 'model_id = (\d+)'))[1]::bigint AS model_id
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
    WHERE x.indrelid = rel.oid AND NOT x.indisprimary;

    -- 2. The old table steps aside: its secondary indexes go (rebuilt below), its key is renamed.
    FOR ix IN SELECT name FROM vk_partition_indexes LOOP
        EXECUTE format('DROP INDEX vk.%I', ix.name);
    END LOOP;
    EXECUTE format('ALTER TABLE vk.embeddings RENAME TO %I', old_name);
    EXECUTE format('ALTER INDEX vk.embeddings_pkey RENAME TO %I', old_name || '_pkey');

    -- 3. The partitioned table: same columns, defaults, NOT NULLs, checks, storage and comments.
    EXECUTE format('CREATE TABLE vk.embeddings (LIKE vk.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
                   'INCLUDING COMMENTS INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY LIST (model_id)',
                   old_name);
    EXECUTE format('ALTER TABLE vk.embeddings OWNER TO %I', rel.relowner::regrole);
    EXECUTE format('COMMENT ON TABLE vk.embeddings IS %L', obj_description(rel.oid, 'pg_class'));
    ALTER TABLE vk.embeddings ADD CONSTRAINT embeddings_pkey PRIMARY KEY (collection_id, pk, model_id, chunk);

    -- 4. One partition per version with vectors or embedded for a collection, and a default.
    EXECUTE format('SELECT array_agg(DISTINCT id ORDER BY id) FROM ('
                   '  SELECT DISTINCT model_id AS id FROM vk.%I'
                   '  UNION SELECT model_id FROM vk.collection_models) v', old_name) INTO model_ids;
    FOREACH m IN ARRAY coalesce(model_ids, '{}') LOOP
        EXECUTE format('CREATE TABLE vk.%I PARTITION OF vk.embeddings FOR VALUES IN (%s)', 'embeddings_m' || m, m);
    END LOOP;
    CREATE TABLE vk.embeddings_default PARTITION OF vk.embeddings DEFAULT;
    FOR statement IN
        SELECT format('ALTER TABLE %s OWNER TO %I', i.inhrelid::regclass, rel.relowner::regrole)
        FROM pg_inherits i WHERE i.inhparent = 'vk.embeddings'::regclass
    LOOP
        EXECUTE statement;
    END LOOP;

    -- 5. The rows, before any index or trigger (they were checked when written).
    EXECUTE format('INSERT INTO vk.embeddings SELECT * FROM vk.%I', old_name);

    -- 6. Indexes: a model's on its partition, under its recorded name; the rest on the parent.
    FOR ix IN SELECT * FROM vk_partition_indexes ORDER BY name LOOP
        IF ix.model_id IS NULL THEN
            EXECUTE ix.definition;
        ELSE
            EXECUTE regexp_replace(ix.definition, ' ON vk\.embeddings USING ',
                                   format(' ON vk.%I USING ', 'embeddings_m' || ix.model_id));
        END IF;
    END LOOP;

    -- 7. Foreign keys, triggers, row-level security, grants: as they were.
    FOREACH statement IN ARRAY fks LOOP
        EXECUTE statement;
    END LOOP;
    FOREACH statement IN ARRAY triggers LOOP
        EXECUTE statement;
    END LOOP;
    IF rel.relrowsecurity THEN
        ALTER TABLE vk.embeddings ENABLE ROW LEVEL SECURITY;
    END IF;
    IF rel.relforcerowsecurity THEN
        ALTER TABLE vk.embeddings FORCE ROW LEVEL SECURITY;
    END IF;
    FOREACH statement IN ARRAY policies LOOP
        EXECUTE statement;
    END LOOP;
    FOR statement IN
        SELECT format('GRANT %s ON vk.embeddings TO %s%s', a.privilege_type,
                      CASE a.grantee WHEN 0 THEN 'public' ELSE quote_ident(a.grantee::regrole::text) END,
                      CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
        FROM aclexplode(rel.relacl) a WHERE a.grantee <> rel.relowner
    LOOP
        EXECUTE statement;
    END LOOP;

    -- 8. Views over the table now read the new one; then the old one goes.
    FOREACH statement IN ARRAY view_defs LOOP
        EXECUTE statement;
    END LOOP;
    EXECUTE format('DROP TABLE vk.%I', old_name);
END
$partition$;

ANALYZE vk.embeddings;
