-- The embedding queue: statement-level triggers fill it, workers drain it.
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.
--
-- The triggers are statement-level with transition tables: one set-based
-- INSERT into vk.queue and at most one NOTIFY per statement, however many rows
-- it touched. Worker-facing functions carry a _vN suffix: a later release adds
-- _v2 beside _v1 so that workers of both releases run during an upgrade.

CREATE OR REPLACE FUNCTION vk.enqueued_v1(c_id bigint, queued bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF queued > 0 THEN
        -- A wake-up hint only: workers also poll, so a lost notification
        -- delays work and never loses it.
        PERFORM pg_notify('vk_queue', c_id::text);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION vk.on_insert_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    c      vk.collections;
    queued bigint;
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = TG_ARGV[0]::bigint;
    EXECUTE format(
        'INSERT INTO vk.queue AS q (collection_id, pk, model_id) '
        'SELECT $1, n.%I::text, cm.model_id FROM vk_new n '
        'CROSS JOIN vk.collection_models cm WHERE cm.collection_id = $1 '
        'ON CONFLICT (collection_id, pk, model_id) DO UPDATE '
        'SET enqueued_at = now(), run_after = now(), attempts = 0, last_error = NULL, dead = false',
        c.pk_column)
        USING c.id;
    GET DIAGNOSTICS queued = ROW_COUNT;
    PERFORM vk.enqueued_v1(c.id, queued);
    RETURN NULL;
END
$$;

-- Forget the vectors and queued work of these row keys. The queue rows go
-- first: if a worker holds one (mid-batch), this waits for its commit before
-- touching vk.embeddings, where the worker writes, so the two never wait on
-- each other (no deadlock), and the vector the worker wrote is deleted after.
CREATE OR REPLACE FUNCTION vk.forget_v1(c_id bigint, keys text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF keys IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM vk.queue q WHERE q.collection_id = c_id AND q.pk = ANY (keys);
    DELETE FROM vk.embeddings e WHERE e.collection_id = c_id AND e.pk = ANY (keys);
END
$$;

-- Queues rows whose text changed (or whose key changed); forgets vectors of
-- keys that no longer exist.
CREATE OR REPLACE FUNCTION vk.on_update_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    c      vk.collections;
    queued bigint;
    keys   text[];
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = TG_ARGV[0]::bigint;
    EXECUTE format(
        'INSERT INTO vk.queue AS q (collection_id, pk, model_id) '
        'SELECT $1, n.pk, cm.model_id '
        'FROM (SELECT %1$I::text AS pk, (%2$s)::text AS body FROM vk_new) n '
        'LEFT JOIN (SELECT %1$I::text AS pk, (%2$s)::text AS body FROM vk_old) o ON o.pk = n.pk '
        'CROSS JOIN vk.collection_models cm '
        'WHERE cm.collection_id = $1 AND (o.pk IS NULL OR n.body IS DISTINCT FROM o.body) '
        'ON CONFLICT (collection_id, pk, model_id) DO UPDATE '
        'SET enqueued_at = now(), run_after = now(), attempts = 0, last_error = NULL, dead = false',
        c.pk_column, c.text_expression)
        USING c.id;
    GET DIAGNOSTICS queued = ROW_COUNT;
    -- Transition tables are visible to this function only, so the keys travel as an array.
    EXECUTE format('SELECT array_agg(k) FROM (SELECT o.%1$I::text AS k FROM vk_old o '
                   'EXCEPT SELECT n.%1$I::text FROM vk_new n) gone', c.pk_column)
        INTO keys;
    PERFORM vk.forget_v1(c.id, keys);
    PERFORM vk.enqueued_v1(c.id, queued);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION vk.on_delete_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    c    vk.collections;
    keys text[];
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = TG_ARGV[0]::bigint;
    EXECUTE format('SELECT array_agg(o.%I::text) FROM vk_old o', c.pk_column) INTO keys;
    PERFORM vk.forget_v1(c.id, keys);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION vk.on_truncate_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Queue first: see vk.forget_v1.
    DELETE FROM vk.queue WHERE collection_id = TG_ARGV[0]::bigint;
    DELETE FROM vk.embeddings WHERE collection_id = TG_ARGV[0]::bigint;
    RETURN NULL;
END
$$;

-- Lock up to batch_size ready queue rows (SKIP LOCKED: workers never wait on
-- each other) and return them with the row's current text. The locks last
-- until the caller's transaction ends: the caller writes the vectors and
-- deletes the rows in that same transaction, so a worker that dies mid-batch
-- simply releases its rows. body is NULL when the row is gone or its text is
-- NULL.
CREATE OR REPLACE FUNCTION vk.claim_v1(batch_size integer)
RETURNS TABLE (collection_id bigint, pk text, model_id bigint, attempts integer, body text)
LANGUAGE plpgsql AS $$
DECLARE
    c          vk.collections;
    k_coll     bigint[];
    k_pk       text[];
    k_model    bigint[];
    k_attempts integer[];
BEGIN
    SELECT array_agg(q.collection_id), array_agg(q.pk), array_agg(q.model_id), array_agg(q.attempts)
    INTO k_coll, k_pk, k_model, k_attempts
    FROM (SELECT x.collection_id, x.pk, x.model_id, x.attempts
          FROM vk.queue x
          WHERE NOT x.dead AND x.run_after <= now()
          ORDER BY x.run_after
          LIMIT batch_size
          FOR UPDATE SKIP LOCKED) q;
    IF k_coll IS NULL THEN
        RETURN;
    END IF;
    FOR c IN SELECT * FROM vk.collections x WHERE x.id = ANY (k_coll) LOOP
        RETURN QUERY EXECUTE format(
            'SELECT k.collection_id, k.pk, k.model_id, k.attempts, '
            '       (SELECT (%1$s)::text FROM %2$s s WHERE s.%3$I = k.pk::%4$s) '
            'FROM unnest($1, $2, $3, $4) AS k(collection_id, pk, model_id, attempts) '
            'WHERE k.collection_id = $5',
            c.text_expression, c.source, c.pk_column, c.pk_type)
            USING k_coll, k_pk, k_model, k_attempts, c.id;
    END LOOP;
END
$$;
COMMENT ON FUNCTION vk.claim_v1(integer) IS
    'Worker API: lock ready queue rows (FOR UPDATE SKIP LOCKED) and return them with their current text.';

CREATE OR REPLACE FUNCTION vk.retry_dead(collection_name text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE vk.queue q SET dead = false, attempts = 0, run_after = now()
    WHERE q.dead AND (collection_name IS NULL OR q.collection_id = (vk.collection(collection_name)).id);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('vk_queue', '');
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION vk.retry_dead(text) IS 'Give dead queue rows (all, or one collection''s) a fresh set of attempts.';
