-- Queue capture: the statement triggers on an attached table that queue its
-- rows for every model version (INSERT, UPDATE, DELETE, TRUNCATE), the NOTIFY
-- that wakes workers, and the functions that forget or requeue row keys.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.
--
-- Trigger functions run as their owner (SECURITY DEFINER) with a fixed
-- search_path: an application that may write its table may not write vk.queue
-- itself.

-- Called on every INSERT, so no SET clause (its GUC save and restore cost more
-- than the body) and no SECURITY DEFINER: it touches no table, and the
-- catalogue functions it calls are named with their schema.
--
-- NOTIFY serialises every notifying commit of the cluster (one exclusive lock
-- held through the commit's WAL flush), which cut the INSERT throughput of
-- eight concurrent writers to a quarter. A session therefore notifies at most
-- once per 50 ms; a worker, once woken, keeps polling every 50 ms for a while
-- (workers/worker.py, LINGER), and in any case at its regular poll.
CREATE OR REPLACE FUNCTION vk._enqueued(c_id bigint, queued bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    now_ms double precision := pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) * 1000;
    last_ms text := pg_catalog.current_setting('vk.queue_notified_ms', true);
BEGIN
    IF queued > 0 AND (coalesce(last_ms, '') = '' OR now_ms - last_ms::double precision >= 50) THEN
        -- A wake-up hint only: workers also poll, so a lost or skipped
        -- notification delays work and never loses it.
        PERFORM pg_catalog.pg_notify('vk_queue', c_id::text);
        -- Session-wide (rolled back with a failed transaction, which then
        -- simply notifies again next time).
        PERFORM pg_catalog.set_config('vk.queue_notified_ms', now_ms::text, false);
    END IF;
END
$$;
COMMENT ON FUNCTION vk._enqueued(bigint, bigint) IS
    'Internal: wake workers on channel vk_queue after rows were queued, at most once per session every 50 ms.';

CREATE OR REPLACE FUNCTION vk._insert_trigger_name(collection_id bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format('vk._on_insert_c%s', collection_id);
COMMENT ON FUNCTION vk._insert_trigger_name(bigint) IS 'Internal: the name of a collection''s own INSERT trigger function.';

-- The INSERT trigger of each collection is a function of its own with a static
-- statement: PL/pgSQL caches its plan, where a generic trigger would parse and
-- plan a dynamic statement on every INSERT (a third of a single-row INSERT's
-- cost, measured in bench/triggers.py).
-- client_min_messages: a first install's DROP ... IF EXISTS would say "does not exist, skipping".
CREATE OR REPLACE FUNCTION vk._install_insert_trigger(collection_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning AS $$
DECLARE
    c  vk.collections;
    fn text := vk._insert_trigger_name(collection_id);
BEGIN
    SELECT * INTO STRICT c FROM vk.collections x WHERE x.id = collection_id;
    IF vk._citus_table(c.source) THEN
        -- Fires on the node holding the shard: the keys go to that node's vk.captured.
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
        EXECUTE format('DROP TRIGGER IF EXISTS vk_queue_insert ON %s', c.source);
        EXECUTE format('CREATE TRIGGER vk_queue_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS vk_new '
                       'FOR EACH STATEMENT EXECUTE FUNCTION vk._capture(%s, %L)', c.source, c.id, c.pk_column);
        EXECUTE format('DROP FUNCTION IF EXISTS %s()', fn);
        RETURN;
    END IF;
    EXECUTE format(
        $f$CREATE OR REPLACE FUNCTION %1$s() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
        DECLARE
            keys text[];
        BEGIN
            -- The keys first, then the queue rows: Citus cannot insert into a
            -- distributed vk.queue straight from a transition table.
            SELECT array_agg(n.%3$I::text) INTO keys FROM vk_new n;
            -- A statement of more than 1,000 rows is a bulk load: its rows wait
            -- behind single writes, of this collection and every other.
            -- vk._queue_pairs's statement, written out: a call to it here cost
            -- an eighth of single-row INSERT throughput (bench/triggers.py,
            -- revision 0024); tests/test_sql_files.py keeps the two the same.
            INSERT INTO vk.queue AS q (collection_id, pk, model_id, priority)
            SELECT %2$s, k.pk, cm.model_id, CASE WHEN cardinality(keys) > 1000 THEN 1 ELSE 0 END
            FROM unnest(keys) AS k(pk)
            CROSS JOIN vk.collection_models cm WHERE cm.collection_id = %2$s
            ON CONFLICT (collection_id, pk, model_id) DO UPDATE
            SET enqueued_at = EXCLUDED.enqueued_at, run_after = EXCLUDED.run_after, attempts = 0, last_error = NULL,
                dead = false, priority = least(q.priority, EXCLUDED.priority);
            IF FOUND THEN
                PERFORM vk._enqueued(%2$s, 1);
            END IF;
            RETURN NULL;
        END
        $body$ $f$, fn, c.id, c.pk_column);
    EXECUTE format('COMMENT ON FUNCTION %s() IS %L', fn,
                   format('vectorkeep: queues the rows inserted into %s (collection %s).', c.source, c.name));
    EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', fn);
    EXECUTE format('DROP TRIGGER IF EXISTS vk_queue_insert ON %s', c.source);
    EXECUTE format('CREATE TRIGGER vk_queue_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS vk_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION %s()', c.source, fn);
END
$$;
COMMENT ON FUNCTION vk._install_insert_trigger(bigint) IS
    'Internal: (re)create a collection''s INSERT trigger function and point the table''s vk_queue_insert trigger at it.';

-- The UPDATE, DELETE and TRUNCATE triggers of an attached table. On a Citus
-- table they fire on the node holding the shard and capture the keys there
-- (vk._capture); on one server they queue and forget at once. The caller
-- creates them (vk.attach: a role that may create triggers on the table).
-- client_min_messages: a first install's DROP ... IF EXISTS would say "does not exist, skipping".
CREATE OR REPLACE FUNCTION vk._install_change_triggers(collection_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning AS $$
DECLARE
    c       vk.collections;
    capture boolean;
BEGIN
    SELECT * INTO STRICT c FROM vk.collections x WHERE x.id = collection_id;
    capture := vk._citus_table(c.source);
    IF capture THEN
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS vk_queue_update ON %s', c.source);
    EXECUTE format('DROP TRIGGER IF EXISTS vk_forget_delete ON %s', c.source);
    EXECUTE format('DROP TRIGGER IF EXISTS vk_forget_truncate ON %s', c.source);
    EXECUTE format('CREATE TRIGGER vk_queue_update AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS vk_old NEW TABLE AS vk_new FOR EACH STATEMENT EXECUTE FUNCTION %s',
                   c.source, CASE WHEN capture THEN format('vk._capture(%s, %L)', c.id, c.pk_column)
                                  ELSE format('vk._on_update(%s)', c.id) END);
    EXECUTE format('CREATE TRIGGER vk_forget_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS vk_old '
                   'FOR EACH STATEMENT EXECUTE FUNCTION %s',
                   c.source, CASE WHEN capture THEN format('vk._capture(%s, %L)', c.id, c.pk_column)
                                  ELSE format('vk._on_delete(%s)', c.id) END);
    EXECUTE format('CREATE TRIGGER vk_forget_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s',
                   c.source, CASE WHEN capture THEN format('vk._capture(%s, %L)', c.id, c.pk_column)
                                  ELSE format('vk._on_truncate(%s)', c.id) END);
END
$$;
COMMENT ON FUNCTION vk._install_change_triggers(bigint) IS
    'Internal: (re)create an attached table''s UPDATE, DELETE and TRUNCATE triggers (capturing ones on a Citus table).';

-- Forget the vectors and queued work of these row keys. The queue rows go
-- first: if a worker holds one (mid-batch), this waits for its commit before
-- touching vk.embeddings, where the worker writes, so the two never wait on
-- each other (no deadlock), and the vector the worker wrote is deleted after.
CREATE OR REPLACE FUNCTION vk._forget(c_id bigint, keys text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
BEGIN
    IF keys IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM vk.queue q WHERE q.collection_id = c_id AND q.pk = ANY (keys);
    DELETE FROM vk.embeddings e WHERE e.collection_id = c_id AND e.pk = ANY (keys);
    PERFORM vk._forget_coordinates_of(c_id, keys, NULL);
END
$$;
COMMENT ON FUNCTION vk._forget(bigint, text[]) IS 'Internal: delete the queued work and vectors of these row keys.';

-- Queues the rows whose text no longer matches their vectors, and forgets
-- the vectors of keys that no longer exist. The text comes from the author's
-- function (vk_expr.text_c<id>); if it raises, every row is queued instead
-- (the claim then fails the bad ones alone): an application's UPDATE never
-- fails because of a vectorkeep expression. Called by the UPDATE trigger, and
-- on Citus for what the capture triggers recorded (vk.move_captured_v1).
CREATE OR REPLACE FUNCTION vk._requeue(c_id bigint, keys text[], gone text[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c         vk.collections;
    queued    bigint := 0;
    t_pk      text[];
    t_body    text[];
    q_pk      text[];
    q_model   bigint[];
    -- The author's expression raised: every row is queued instead.
    unreadable boolean := false;
    -- As for INSERT: a statement of more than 1,000 rows waits behind single writes.
    bulk      smallint := CASE WHEN cardinality(keys) > 1000 THEN 1 ELSE 0 END;
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = c_id;
    IF c.id IS NULL THEN
        RETURN 0;
    END IF;
    IF keys IS NOT NULL THEN
        BEGIN
            EXECUTE format('SELECT array_agg(t.pk), array_agg(t.body) FROM vk_expr.%I($1) t', 'text_c' || c.id)
                INTO t_pk, t_body USING keys;
        EXCEPTION WHEN OTHERS THEN
            unreadable := true;
        END;
        IF unreadable THEN
            queued := vk._queue_keys(c.id, keys, bulk);
        ELSE
            -- The pairs first, then the call: Citus plans the NOT EXISTS over the
            -- distributed vk.embeddings in a plain SELECT, not beside a function call.
            SELECT array_agg(t.pk), array_agg(cm.model_id) INTO q_pk, q_model
            FROM unnest(t_pk, t_body) AS t(pk, body)
            CROSS JOIN vk.collection_models cm
            WHERE cm.collection_id = c.id
              AND NOT EXISTS (SELECT 1 FROM vk.embeddings e
                              WHERE e.collection_id = c.id AND e.pk = t.pk AND e.model_id = cm.model_id AND e.chunk = 0
                                AND e.text_sha256 = sha256(convert_to(t.body, 'UTF8')))
              -- A row without text and without vectors has nothing to do.
              AND (t.body ~ '[^[:space:]]' OR EXISTS (SELECT 1 FROM vk.embeddings e
                                                     WHERE e.collection_id = c.id AND e.pk = t.pk
                                                       AND e.model_id = cm.model_id));
            queued := vk._queue_pairs(c.id, q_pk, q_model, bulk);
        END IF;
        IF c.metadata_expression IS NOT NULL THEN
            BEGIN
                PERFORM vk._refresh_metadata(c.id, keys);
            EXCEPTION WHEN OTHERS THEN
                -- The claim computes it again and fails the bad rows alone.
                queued := queued + vk._queue_keys(c.id, keys, bulk);
            END;
        END IF;
    END IF;
    PERFORM vk._forget(c.id, gone);
    RETURN queued;
END
$$;
COMMENT ON FUNCTION vk._requeue(bigint, text[], text[]) IS
    'Internal: queue the rows of these keys whose text no longer matches their vectors, forget the keys that are gone.';

-- The one statement that queues a (row, version) pair again: one already in
-- the queue starts over (no attempts, no error, alive, due now) at the more
-- urgent of its two priorities. vk.add_model and vk.enqueue_page_v1 insert
-- with ON CONFLICT DO NOTHING instead: a backfill never resets work that a
-- write queued. Each collection's INSERT trigger writes this statement out
-- (vk._install_insert_trigger).
CREATE OR REPLACE FUNCTION vk._queue_pairs(c_id bigint, pks text[], model_ids bigint[], prio smallint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    queued bigint;
BEGIN
    INSERT INTO vk.queue AS q (collection_id, pk, model_id, priority)
    SELECT c_id, p.pk, p.model_id, prio FROM unnest(pks, model_ids) AS p(pk, model_id)
    ON CONFLICT (collection_id, pk, model_id) DO UPDATE
    SET enqueued_at = EXCLUDED.enqueued_at, run_after = EXCLUDED.run_after, attempts = 0, last_error = NULL,
        dead = false, priority = least(q.priority, EXCLUDED.priority);
    GET DIAGNOSTICS queued = ROW_COUNT;
    RETURN queued;
END
$$;
COMMENT ON FUNCTION vk._queue_pairs(bigint, text[], bigint[], smallint) IS
    'Internal: queue these (row key, model version) pairs of a collection at this priority; a pair already queued starts over. Returns the pairs queued.';

-- Queue these keys for every version of the collection, whatever their text.
CREATE OR REPLACE FUNCTION vk._queue_keys(c_id bigint, keys text[], bulk smallint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN (SELECT vk._queue_pairs(c_id, array_agg(k.pk), array_agg(cm.model_id), bulk)
            FROM unnest(keys) AS k(pk)
            CROSS JOIN vk.collection_models cm WHERE cm.collection_id = c_id);
END
$$;
COMMENT ON FUNCTION vk._queue_keys(bigint, text[], smallint) IS
    'Internal: queue these row keys for every model version of the collection (priority 1: a bulk statement''s).';

CREATE OR REPLACE FUNCTION vk._on_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c    vk.collections;
    keys text[];
    gone text[];
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = TG_ARGV[0]::bigint;
    -- Transition tables are visible to this function only, so the keys travel as arrays.
    EXECUTE format('SELECT array_agg(n.%1$I::text) FROM vk_new n', c.pk_column) INTO keys;
    EXECUTE format('SELECT array_agg(k) FROM (SELECT o.%1$I::text AS k FROM vk_old o '
                   'EXCEPT SELECT n.%1$I::text FROM vk_new n) gone', c.pk_column)
        INTO gone;
    PERFORM vk._enqueued(c.id, vk._requeue(c.id, keys, gone));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION vk._on_update() IS
    'Trigger on attached tables (argument: collection id): queue rows whose text no longer matches their vectors, forget keys that went away.';

CREATE OR REPLACE FUNCTION vk._on_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c    vk.collections;
    keys text[];
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = TG_ARGV[0]::bigint;
    EXECUTE format('SELECT array_agg(o.%I::text) FROM vk_old o', c.pk_column) INTO keys;
    PERFORM vk._forget(c.id, keys);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION vk._on_delete() IS
    'Trigger on attached tables (argument: collection id): forget the vectors and queued work of deleted rows.';

CREATE OR REPLACE FUNCTION vk._on_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
BEGIN
    -- Queue first: see vk._forget.
    DELETE FROM vk.queue WHERE collection_id = TG_ARGV[0]::bigint;
    DELETE FROM vk.embeddings WHERE collection_id = TG_ARGV[0]::bigint;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION vk._on_truncate() IS
    'Trigger on attached tables (argument: collection id): forget every vector and queued row of the collection.';
