-- Citus: vk over a coordinator and worker nodes (docs/scale-out.md).
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.
--
-- On one server none of this runs: vk._citus_table is false everywhere, the
-- triggers queue at once and vk.collect_captured_v1 finds nothing.

-- Citus's catalogue is read through EXECUTE: a server without Citus has no
-- pg_dist_partition, and these functions must still be created there.
CREATE OR REPLACE FUNCTION vk._citus_table(t regclass) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found boolean;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    -- Distributed (partmethod h) or reference (replication model t); not a
    -- Citus local table, which lives on the coordinator only.
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p '
            'WHERE p.logicalrelid = $1 AND (p.partmethod <> ''n'' OR p.repmodel = ''t''))'
        INTO found USING t;
    RETURN found;
END
$$;
COMMENT ON FUNCTION vk._citus_table(regclass) IS
    'Internal: whether a table is distributed or a reference table of Citus (false on a server without Citus).';

-- On Citus, a transaction that reads distributed tables and then writes
-- reference tables (vk.activate measures the vectors, then records it on the
-- version) must have read over one connection per node: Citus refuses the
-- write after a parallel read. Called first by such functions.
CREATE OR REPLACE FUNCTION vk._one_connection_per_node() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF vk._citus_table('vk.embeddings') THEN
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
END
$$;
COMMENT ON FUNCTION vk._one_connection_per_node() IS
    'Internal, on Citus: read distributed tables over one connection per node for the rest of this transaction, so that it may write reference tables after.';

-- The lookups that also run inside a shard's query on a worker node (row
-- security; a filter such as collection_id = vk.collection_id('documents'))
-- read only reference tables, whose copy on that node is local: on Citus
-- they get citus.allow_nested_distributed_execution for their own call.
-- Set here, by vk.distribute() and after each upgrade re-creates them
-- (99_privileges.sql): a server without Citus refuses that setting to an
-- owner who is not a superuser, so it cannot be on their definitions.
CREATE OR REPLACE FUNCTION vk._citus_settings() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    f regprocedure;
BEGIN
    IF NOT vk._citus_table('vk.embeddings') THEN
        RETURN;
    END IF;
    FOREACH f IN ARRAY ARRAY['vk._may_read(bigint)', 'vk._may_read_adopted(bigint)',
                             'vk._may_read_job(bigint, text, jsonb, bigint, bigint)',
                             'vk._may_use_trained(bigint, name)', 'vk._kind_role(text)',
                             'vk.collection_id(text)', 'vk.model(text)']::regprocedure[] LOOP
        EXECUTE format('ALTER FUNCTION %s SET citus.allow_nested_distributed_execution = on', f);
    END LOOP;
END
$$;
COMMENT ON FUNCTION vk._citus_settings() IS
    'Internal, on Citus: let the lookups that run inside a shard''s query read vk''s reference tables there (nothing on one server).';

CREATE OR REPLACE FUNCTION vk.distributed_v1() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT vk._citus_table('vk.queue')
$$;
COMMENT ON FUNCTION vk.distributed_v1() IS
    'Worker contract 1 (revision 0017): whether vk is distributed over Citus (vk.distribute()): then workers collect what the triggers captured on every node (vk.collect_captured_v1).';

-- The capturing trigger of a Citus table (arguments: collection id, key
-- column). Runs on the node that holds the shard, where a distributed table
-- may not be written: the keys go to this node's vk.captured.
CREATE OR REPLACE FUNCTION vk._capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c_id bigint := TG_ARGV[0]::bigint;
    key  text := TG_ARGV[1];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO vk.captured (collection_id, pk, op) VALUES (c_id, '', 't');
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('INSERT INTO vk.captured (collection_id, pk, op) SELECT $1, n.%I::text, ''q'' FROM vk_new n', key)
            USING c_id;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        EXECUTE format('INSERT INTO vk.captured (collection_id, pk, op) '
                       'SELECT $1, k, ''d'' FROM (SELECT o.%1$I::text AS k FROM vk_old o '
                       'EXCEPT SELECT n.%1$I::text FROM vk_new n) gone', key)
            USING c_id;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('INSERT INTO vk.captured (collection_id, pk, op) SELECT $1, o.%I::text, ''d'' FROM vk_old o', key)
            USING c_id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION vk._capture() IS
    'Trigger on attached Citus tables (arguments: collection id, key column): record the keys a statement wrote or deleted in this node''s vk.captured.';

-- Run on each node (vk.collect_captured_v1 does): what this node's triggers
-- captured goes to the queue, in one transaction with its deletion here, so a
-- key is never lost nor moved twice. Per key the last capture counts; a
-- truncate forgets everything of its collection captured before it.
CREATE OR REPLACE FUNCTION vk.move_captured_v1(batch_size integer DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c_id   bigint;
    cut    bigint;
    queued text[];
    gone   text[];
    moved  bigint := 0;
BEGIN
    -- It writes reference tables (vk.coordinates) after distributed ones.
    PERFORM vk._one_connection_per_node();
    CREATE TEMP TABLE IF NOT EXISTS vk_moving (id bigint, collection_id bigint, pk text, op "char") ON COMMIT DROP;
    TRUNCATE vk_moving;
    WITH taken AS (
        DELETE FROM vk.captured x
        WHERE x.id IN (SELECT y.id FROM vk.captured y ORDER BY y.id LIMIT batch_size FOR UPDATE SKIP LOCKED)
        RETURNING x.id, x.collection_id, x.pk, x.op)
    INSERT INTO vk_moving SELECT * FROM taken;
    GET DIAGNOSTICS moved = ROW_COUNT;
    FOR c_id IN SELECT DISTINCT m.collection_id FROM vk_moving m LOOP
        SELECT max(m.id) INTO cut FROM vk_moving m WHERE m.collection_id = c_id AND m.op = 't';
        IF cut IS NOT NULL THEN
            -- Queue first: see vk._forget.
            DELETE FROM vk.queue q WHERE q.collection_id = c_id;
            DELETE FROM vk.embeddings e WHERE e.collection_id = c_id;
            PERFORM vk._forget_coordinates_of(c_id, NULL, NULL);
        END IF;
        SELECT array_agg(l.pk) FILTER (WHERE l.op = 'q'), array_agg(l.pk) FILTER (WHERE l.op = 'd')
        INTO queued, gone
        FROM (SELECT DISTINCT ON (m.pk) m.pk, m.op FROM vk_moving m
              WHERE m.collection_id = c_id AND m.id > coalesce(cut, 0) AND m.op <> 't'
              ORDER BY m.pk, m.id DESC) l;
        PERFORM vk._requeue(c_id, queued, gone);
    END LOOP;
    RETURN moved;
END
$$;
COMMENT ON FUNCTION vk.move_captured_v1(integer) IS
    'Worker contract 1 (revision 0017), on every Citus node: move up to batch_size keys this node''s triggers captured to vk.queue (queued when their text changed, forgotten when deleted); the number moved.';

-- On the coordinator: every node's captured keys to the queue. Each node
-- moves its own in a transaction of its own (run_command_on_all_nodes
-- connects as the caller).
CREATE OR REPLACE FUNCTION vk.collect_captured_v1() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r     record;
    moved bigint := 0;
BEGIN
    IF NOT vk.distributed_v1() THEN
        RETURN 0;
    END IF;
    FOR r IN EXECUTE 'SELECT nodeid, success, result FROM run_command_on_all_nodes($c$SELECT vk.move_captured_v1()$c$)'
    LOOP
        IF NOT r.success THEN
            RAISE EXCEPTION 'vectorkeep: could not move the captured keys of Citus node %: %', r.nodeid, r.result
                USING ERRCODE = 'connection_failure',
                      HINT = 'The keys stay captured on that node and move once it answers (SELECT * FROM pg_dist_node).';
        END IF;
        moved := moved + r.result::bigint;
    END LOOP;
    RETURN moved;
END
$$;
COMMENT ON FUNCTION vk.collect_captured_v1() IS
    'Worker contract 1 (revision 0017): on Citus, move the keys every node''s triggers captured to vk.queue (vk.move_captured_v1 on each node); 0 on one server.';

-- Create a function again, as its owner, so that Citus creates it on every
-- node, and give it there the grants it has here.
CREATE OR REPLACE FUNCTION vk._create_everywhere(f oid, owner name, acl aclitem[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- Printed on this search_path, pgvector's types come qualified: Citus
    -- sends the grants below to the nodes as written.
    signature text := f::regprocedure::text;
    definition text := pg_get_functiondef(f);
    as_owner  boolean := owner <> current_user;
    grantee   text;
BEGIN
    -- The body names pgvector's types and operators as its file did.
    PERFORM set_config('search_path', format('pg_catalog, %I, pg_temp',
                       (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                        WHERE e.extname = 'vector')), true);
    IF as_owner THEN
        EXECUTE format('SET LOCAL ROLE %I', owner);
    END IF;
    EXECUTE definition;
    IF as_owner THEN
        RESET ROLE;
    END IF;
    PERFORM set_config('search_path', 'pg_catalog, pg_temp', true);
    IF acl IS NULL THEN
        RETURN;  -- the default, which every node has
    END IF;
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', signature);
    FOR grantee IN SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END
                   FROM aclexplode(acl) a WHERE a.privilege_type = 'EXECUTE' LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', signature, grantee);
    END LOOP;
END
$$;
COMMENT ON FUNCTION vk._create_everywhere(oid, name, aclitem[]) IS
    'Internal (vk.distribute): create a function again as its owner, which Citus copies to every node, with its grants.';

-- Turn vk into Citus tables. Idempotent: what is distributed already stays.
--   reference tables (a copy on every node): the small tables every query reads;
--   distributed by collection_id, co-located: vk.queue and vk.embeddings (a
--   search, a worker's batch and its writes stay on one shard group); or
--   vk.embeddings by pk (embeddings_by): a collection spreads over every
--   shard and a search asks each shard's HNSW index, the coordinator merges;
--   attached tables that are still the coordinator's: distributed by their key;
--   vk.captured: a plain table on every node (the capturing triggers' outbox).
CREATE OR REPLACE FUNCTION vk.distribute(shards integer DEFAULT NULL, embeddings_by text DEFAULT 'collection_id')
RETURNS TABLE (table_name regclass, citus_table_type text, distribution_column text, shard_count integer)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keys    text[] := '{}';
    stmt    text;
    r       record;
    t       regclass;
    workers integer;
BEGIN
    IF embeddings_by IS NULL OR embeddings_by NOT IN ('collection_id', 'pk') THEN
        RAISE EXCEPTION 'vectorkeep: vk.embeddings is distributed by collection_id or pk, not %',
                coalesce(quote_literal(embeddings_by), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'collection_id keeps a collection on one shard (a search reads one HNSW index); pk spreads '
                      || 'a collection over every shard (a search asks each and merges): docs/scale-out.md has the figures.';
    END IF;
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: this database has no Citus'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'On the coordinator and every worker node: shared_preload_libraries = ''citus'', '
                      || 'CREATE EXTENSION citus; then on the coordinator SELECT citus_add_node(host, port); for each worker.';
    END IF;
    EXECUTE 'SELECT count(*) FROM pg_catalog.pg_dist_node WHERE groupid <> 0 AND noderole = ''primary'' AND isactive'
        INTO workers;
    IF workers = 0 THEN
        RAISE EXCEPTION 'vectorkeep: Citus has no worker node in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'SELECT citus_set_coordinator_host(host, port); SELECT citus_add_node(host, port); for each worker, then call vk.distribute() again.';
    END IF;
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    -- One connection per node: this transaction creates tables and keys
    -- between reference and distributed tables, which Citus refuses after a
    -- parallel operation in the same transaction.
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    IF NOT vk._citus_table('vk.embeddings') THEN
        -- Citus converts every table linked by foreign keys at once and
        -- refuses some of vk's (ON DELETE SET NULL from a reference table):
        -- the keys go, the tables convert, the keys come back.
        FOR r IN SELECT k.conrelid::regclass AS tab, k.conname, pg_get_constraintdef(k.oid) AS def
                 FROM pg_constraint k
                 WHERE k.contype = 'f' AND (k.connamespace = 'vk'::regnamespace
                                            OR k.confrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'vk'::regnamespace))
                 ORDER BY k.conrelid, k.conname LOOP
            keys := keys || format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.tab, r.conname, r.def);
            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tab, r.conname);
        END LOOP;
        FOR t IN SELECT c.oid FROM pg_class c
                 WHERE c.relnamespace = 'vk'::regnamespace AND c.relkind IN ('r', 'p')
                   -- Text queries' requests and cache: the coordinator's own, plain
                   -- tables (the loopback of vk.embed connects to it). BM25's
                   -- statistics: kept on one server only (33_keywords.sql), emptied below.
                   -- API usage: the coordinator's, written in the batch's transaction.
                   AND c.relname NOT IN ('embeddings', 'queue', 'captured', 'embed_requests', 'embed_cache',
                                         'keyword_postings', 'keyword_stats', 'keyword_norms', 'api_usage')
                   AND NOT EXISTS (SELECT 1 FROM vk.collections x WHERE x.source = c.oid)
                 ORDER BY c.relname LOOP
            IF NOT vk._citus_table(t) THEN
                PERFORM create_reference_table(t);
            END IF;
        END LOOP;
        -- The queue always by collection: a worker's claim locks rows of one shard.
        PERFORM create_distributed_table('vk.queue', 'collection_id', shard_count => shards);
        IF embeddings_by = 'collection_id' THEN
            PERFORM create_distributed_table('vk.embeddings', 'collection_id', colocate_with => 'vk.queue');
        ELSE
            PERFORM create_distributed_table('vk.embeddings', 'pk', shard_count => shards);
        END IF;
        -- Keyword search on Citus ranks without them (vk._keyword_sql).
        TRUNCATE vk.keyword_postings, vk.keyword_stats, vk.keyword_norms;
        FOREACH stmt IN ARRAY keys LOOP
            -- Not the keys of vk.queue and vk.embeddings: once a transaction has read a
            -- distributed table with a key to a reference table over several connections,
            -- Citus refuses to write any reference table in it (a job records its snapshot
            -- after reading the collection). vk.detach deletes their rows itself.
            CONTINUE WHEN stmt ~ '^ALTER TABLE vk\.(queue|embeddings) ';
            -- A plain table may not reference a Citus table.
            CONTINUE WHEN stmt ~ '^ALTER TABLE vk\.(embed_requests|embed_cache) ';
            EXECUTE stmt;
        END LOOP;
    END IF;
    -- The outbox of the capturing triggers, on every node.
    PERFORM run_command_on_workers(format(
        'CREATE TABLE IF NOT EXISTS vk.captured (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, '
        'collection_id bigint NOT NULL, pk text NOT NULL, op "char" NOT NULL CHECK (op IN (''q'', ''d'', ''t'')), '
        'captured_at timestamptz NOT NULL DEFAULT clock_timestamp()); ALTER TABLE vk.captured OWNER TO %I',
        (SELECT tableowner FROM pg_tables WHERE schemaname = 'vk' AND tablename = 'captured')));
    FOR t IN SELECT x.source FROM vk.collections x ORDER BY x.id LOOP
        IF NOT vk._citus_table(t) THEN
            PERFORM create_distributed_table(t, (SELECT x.pk_column::text FROM vk.collections x WHERE x.source = t),
                                             shard_count => shards);
        END IF;
    END LOOP;
    FOR r IN SELECT x.id FROM vk.collections x ORDER BY x.id LOOP
        PERFORM vk._install_insert_trigger(r.id);
        PERFORM vk._install_change_triggers(r.id);
    END LOOP;
    -- Functions created before their schema was distributed stay on the
    -- coordinator: the nodes need vk's (triggers, row security, moving what
    -- was captured) and the text functions of vk_expr. Each is created again
    -- here, as its owner, and Citus creates it on every node; then its grants.
    FOR r IN EXECUTE
        'SELECT p.oid, p.oid::regprocedure AS f, pg_get_userbyid(p.proowner) AS owner, p.proacl '
        'FROM pg_proc p '
        'WHERE p.pronamespace IN (''vk''::regnamespace, ''vk_expr''::regnamespace) AND p.prokind = ''f'' '
        'AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o '
        '                WHERE o.classid = ''pg_proc''::regclass AND o.objid = p.oid) ORDER BY p.oid' LOOP
        PERFORM vk._create_everywhere(r.oid, r.owner, r.proacl);
    END LOOP;
    PERFORM vk._citus_settings();
    RETURN QUERY EXECUTE
        'SELECT p.logicalrelid::regclass, CASE WHEN p.partmethod = ''n'' THEN ''reference'' ELSE ''distributed'' END, '
        '       column_to_column_name(p.logicalrelid, p.partkey), '
        '       (SELECT count(*) FROM pg_catalog.pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid)::integer '
        'FROM pg_catalog.pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid '
        'WHERE c.relnamespace = ''vk''::regnamespace OR p.logicalrelid IN (SELECT x.source FROM vk.collections x) '
        'ORDER BY 2, 1::text';
END
$$;
COMMENT ON FUNCTION vk.distribute(integer, text) IS
    'On a Citus coordinator with worker nodes: make vk''s small tables reference tables, vk.queue and vk.embeddings distributed by collection (co-located; embeddings_by => ''pk'' spreads a collection''s vectors over every shard), attached tables distributed by their key, and every node ready to capture writes; idempotent. Returns each table and how it is placed. shards: shards per distributed table (Citus''s citus.shard_count when NULL).';
