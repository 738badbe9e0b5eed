-- The embedding queue as workers see it: claim a batch, write its vectors,
-- settle or fail each row, all in the worker's one transaction.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.
--
-- Workers touch the database only through the functions named *_v1 here and
-- in the other files (the worker contract, version 1, see vk.worker_contract):
-- a changed contract adds *_v2 beside *_v1, and *_v1 goes one release later,
-- so the workers of two releases run side by side during an upgrade.

CREATE OR REPLACE FUNCTION vk.worker_contract() RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY[1];
COMMENT ON FUNCTION vk.worker_contract() IS
    'The worker contract versions this schema serves (functions vk.*_v1 for version 1). A worker checks it at start and refuses a schema that lacks its version.';

-- Each key's value from one of a collection's expression functions
-- (vk_expr.text_c<id> or meta_c<id>, returning (pk, value)), as text, with
-- its author's rights. If the function raises for the batch, it runs row by
-- row: a bad row gets its error, the others their values. A key whose row is
-- gone comes back not at all.
CREATE OR REPLACE FUNCTION vk._expression_values(fn text, keys text[])
RETURNS TABLE (pk text, value text, error text)
LANGUAGE plpgsql AS $$
DECLARE
    v_pk      text[];
    v_value   text[];
    e_pk      text[] := '{}';
    e_error   text[] := '{}';
    one_pk    text;
    one_value text;
BEGIN
    BEGIN
        EXECUTE format('SELECT array_agg(x.pk), array_agg(x.v::text) FROM vk_expr.%I($1) AS x(pk, v)', fn)
            INTO v_pk, v_value USING keys;
    EXCEPTION WHEN OTHERS THEN
        v_pk := '{}';
        v_value := '{}';
        FOREACH one_pk IN ARRAY keys LOOP
            BEGIN
                EXECUTE format('SELECT x.v::text FROM vk_expr.%I(ARRAY[$1]) AS x(pk, v)', fn)
                    INTO one_value USING one_pk;
                v_pk := v_pk || one_pk;
                v_value := v_value || one_value;
            EXCEPTION WHEN OTHERS THEN
                e_pk := e_pk || one_pk;
                e_error := e_error || SQLERRM;
            END;
        END LOOP;
    END;
    RETURN QUERY
    SELECT v.pk, v.value, NULL::text FROM unnest(v_pk, v_value) AS v(pk, value)
    UNION ALL
    SELECT e.pk, NULL, e.error FROM unnest(e_pk, e_error) AS e(pk, error);
END
$$;
COMMENT ON FUNCTION vk._expression_values(text, text[]) IS
    'Internal: the values of a collection''s expression function (vk_expr.text_c<id>, meta_c<id>) for these keys, a row that raises with its error instead.';

-- Lock up to batch_size ready queue rows (SKIP LOCKED: workers never wait on
-- each other) and return them with the row's current text. The locks last
-- until the caller's transaction ends: the caller writes the vectors and
-- deletes the rows in that same transaction, so a worker that dies mid-batch
-- simply releases its rows. body is NULL when the row is gone or its text is
-- NULL.
--
-- The text comes from each collection's expression function, with its
-- author's rights. A row whose text expression raises fails alone, here: it
-- gets the error, a retry after a backoff, and is dead after 5 attempts (like
-- a row the encoder fails), and is not returned.
--
-- live_only: only rows the application wrote (priority 0) for a version its
-- collection searches with or has active: what a worker's interactive lane
-- takes, beside a main loop busy with a backfill (vk.claim_live_v1).
-- The versions a collection searches with or has active: what an
-- interactive lane embeds (a plain list, so the claim needs no join of the
-- queue with other tables, which Citus refuses under FOR UPDATE).
CREATE OR REPLACE FUNCTION vk._live_models(c_id bigint) RETURNS bigint[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(m.id), '{}')
    FROM vk.collections s JOIN vk.collection_models cm ON cm.collection_id = s.id JOIN vk.models m ON m.id = cm.model_id
    WHERE s.id = c_id AND (s.default_model_id = m.id OR m.status = 'active');
$$;
COMMENT ON FUNCTION vk._live_models(bigint) IS
    'Internal: the model versions a collection searches with (its default) or has active: what vk.claim_live_v1 takes.';

CREATE OR REPLACE FUNCTION vk._claim(batch_size integer, live_only boolean)
RETURNS TABLE (collection_id bigint, pk text, model_id bigint, attempts integer, body text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c          vk.collections;
    k_coll     bigint[];
    k_pk       text[];
    k_model    bigint[];
    k_attempts integer[];
    mine       text[];
    t_pk       text[];
    t_body     text[];
    f_pk       text[];
    f_error    text[];
    m_pk       text[];
    m_meta     jsonb[];
    cid        bigint;
    tried      bigint[] := '{}';
    claimed_at double precision := extract(epoch FROM now());
BEGIN
    -- A batch comes from one collection: the one whose row is most urgent
    -- (what the application wrote first, then bulk loads, then backfills).
    -- On Citus vk.queue is distributed by collection, and FOR UPDATE is only
    -- allowed on one shard; when another worker holds every ready row of that
    -- collection, the next collection is tried.
    FOR attempt IN 1..8 LOOP
        SELECT x.collection_id INTO cid
        FROM vk.queue x
        WHERE NOT x.dead AND x.run_after <= now() AND x.collection_id <> ALL (tried)
          AND (NOT live_only OR x.priority = 0)
        ORDER BY x.priority, x.run_after
        LIMIT 1;
        IF cid IS NULL THEN
            RETURN;
        END IF;
        tried := tried || cid;
        SELECT array_agg(q.collection_id), array_agg(q.pk), array_agg(q.model_id), array_agg(q.attempts)
        INTO k_coll, k_pk, k_model, k_attempts
        FROM (SELECT x.collection_id, x.pk, x.model_id, x.attempts
              FROM vk.queue x
              WHERE x.collection_id = cid AND NOT x.dead AND x.run_after <= now()
                AND (NOT live_only OR x.priority = 0 AND x.model_id = ANY (vk._live_models(cid)))
              ORDER BY x.priority, x.run_after
              LIMIT batch_size
              FOR UPDATE SKIP LOCKED) q;
        EXIT WHEN k_coll IS NOT NULL;
    END LOOP;
    IF k_coll IS NULL THEN
        RETURN;
    END IF;
    FOR c IN SELECT * FROM vk.collections x WHERE x.id = ANY (k_coll) LOOP
        SELECT array_agg(DISTINCT k.pk) INTO mine FROM unnest(k_coll, k_pk) AS k(c_id, pk) WHERE k.c_id = c.id;
        SELECT array_agg(v.pk) FILTER (WHERE v.error IS NULL), array_agg(v.value) FILTER (WHERE v.error IS NULL),
               coalesce(array_agg(v.pk) FILTER (WHERE v.error IS NOT NULL), '{}'),
               coalesce(array_agg('text expression: ' || v.error) FILTER (WHERE v.error IS NOT NULL), '{}')
        INTO t_pk, t_body, f_pk, f_error
        FROM vk._expression_values('text_c' || c.id, mine) v;
        IF c.metadata_expression IS NOT NULL THEN
            -- The metadata rides on the queue row to the vectors' write (vk.put_chunk_v1).
            SELECT array_agg(v.pk) FILTER (WHERE v.error IS NULL),
                   array_agg(v.value::jsonb) FILTER (WHERE v.error IS NULL),
                   f_pk || coalesce(array_agg(v.pk) FILTER (WHERE v.error IS NOT NULL), '{}'),
                   f_error || coalesce(array_agg('metadata expression: ' || v.error)
                                       FILTER (WHERE v.error IS NOT NULL), '{}')
            INTO m_pk, m_meta, f_pk, f_error
            FROM vk._expression_values('meta_c' || c.id, mine) v;
            UPDATE vk.queue q SET metadata = t.metadata
            FROM unnest(m_pk, m_meta) AS t(pk, metadata)
            WHERE q.collection_id = c.id AND q.pk = t.pk AND q.metadata IS DISTINCT FROM t.metadata
              AND q.model_id IN (SELECT k.m FROM unnest(k_coll, k_pk, k_model) AS k(c_id, pk, m)
                                 WHERE k.c_id = c.id AND k.pk = t.pk);
        END IF;
        UPDATE vk.queue q
        SET attempts = q.attempts + 1, last_error = left(f.error, 4000), dead = q.attempts + 1 >= 5,
            -- In epoch seconds: Citus refuses STABLE functions (now(), timestamptz +
            -- interval) beside column references in an UPDATE.
            run_after = to_timestamp(claimed_at + least(600, 2 * 2 ^ q.attempts))
        FROM unnest(f_pk, f_error) AS f(pk, error)
        WHERE q.collection_id = c.id AND q.pk = f.pk
          AND q.model_id IN (SELECT k.m FROM unnest(k_coll, k_pk, k_model) AS k(c_id, pk, m)
                             WHERE k.c_id = c.id AND k.pk = f.pk);
        RETURN QUERY
        SELECT k.collection_id, k.pk, k.model_id, k.attempts, t.body
        FROM unnest(k_coll, k_pk, k_model, k_attempts) AS k(collection_id, pk, model_id, attempts)
        LEFT JOIN unnest(coalesce(t_pk, '{}'), coalesce(t_body, '{}')) AS t(pk, body) ON t.pk = k.pk
        WHERE k.collection_id = c.id AND NOT k.pk = ANY (f_pk);
    END LOOP;
END
$$;
COMMENT ON FUNCTION vk._claim(integer, boolean) IS
    'Internal: lock up to batch_size ready queue rows (FOR UPDATE SKIP LOCKED), the application''s first, and return them with their current text (vk.claim_v1, vk.claim_live_v1).';

CREATE OR REPLACE FUNCTION vk.claim_v1(batch_size integer)
RETURNS TABLE (collection_id bigint, pk text, model_id bigint, attempts integer, body text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM vk._claim(batch_size, false);
$$;
COMMENT ON FUNCTION vk.claim_v1(integer) IS
    'Worker contract 1: lock up to batch_size ready queue rows (FOR UPDATE SKIP LOCKED) and return them with their current text: rows the application wrote first, then bulk statements'' rows, then backfills''; a row whose text expression raises is failed (retried, dead after 5 attempts) and not returned.';

CREATE OR REPLACE FUNCTION vk.claim_live_v1(batch_size integer)
RETURNS TABLE (collection_id bigint, pk text, model_id bigint, attempts integer, body text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM vk._claim(batch_size, true);
$$;
COMMENT ON FUNCTION vk.claim_live_v1(integer) IS
    'Worker contract 1 (revision 0015): as vk.claim_v1, only rows the application wrote (not a bulk statement''s or a backfill''s) for versions their collection searches with or has active: a worker''s interactive lane embeds them while its main loop works through a backfill.';

CREATE OR REPLACE FUNCTION vk.chunking_v1(collection_id bigint) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT c.chunking FROM vk.collections c WHERE c.id = chunking_v1.collection_id $$;
COMMENT ON FUNCTION vk.chunking_v1(bigint) IS 'Worker contract 1: how a collection''s rows are cut before embedding.';

CREATE OR REPLACE FUNCTION vk._queued_metadata(c_id bigint, row_pk text, m_id bigint) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT q.metadata FROM vk.queue q WHERE q.collection_id = c_id AND q.pk = row_pk AND q.model_id = m_id;
$$;
COMMENT ON FUNCTION vk._queued_metadata(bigint, text, bigint) IS
    'Internal: the metadata the claim put on a queue row, for the vectors'' write (vk.put_chunk_v1).';

-- One chunk's vector (chunk 0 of an unchunked row) and the exact text it came
-- from, its offsets in the row's text, and the hash of that whole text.
CREATE OR REPLACE FUNCTION vk.put_chunk_v1(
    collection_id bigint, pk text, model_id bigint, chunk integer, start_char integer, end_char integer,
    embedding vector, body text, text_sha256 bytea, truncated boolean
) RETURNS void
LANGUAGE sql AS $$
    -- The row's metadata comes from its queue row, where the claim put it.
    INSERT INTO vk.embeddings AS e
        (collection_id, pk, model_id, chunk, start_char, end_char, embedding, body, text_sha256, truncated, metadata)
    -- (A function call, not a subquery: Citus refuses subqueries in an INSERT's VALUES.)
    VALUES (collection_id, pk, model_id, chunk, start_char, end_char, embedding, body, text_sha256, truncated,
            vk._queued_metadata(collection_id, pk, model_id))
    ON CONFLICT ON CONSTRAINT embeddings_pkey DO UPDATE
    SET embedding = EXCLUDED.embedding, body = EXCLUDED.body, start_char = EXCLUDED.start_char,
        end_char = EXCLUDED.end_char, text_sha256 = EXCLUDED.text_sha256, truncated = EXCLUDED.truncated,
        metadata = EXCLUDED.metadata, computed_at = EXCLUDED.computed_at;
$$;
COMMENT ON FUNCTION vk.put_chunk_v1(bigint, text, bigint, integer, integer, integer, vector, text, bytea, boolean) IS
    'Worker contract 1: write one chunk''s vector with its text, offsets, the hash of the row''s text and the truncation flag.';

-- What trigger embeddings_forget_coordinates (80_maps.sql) does, for Citus,
-- where it cannot (a no-op on one server, where the trigger does it): keys
-- NULL means every row, m_id NULL every source version.
CREATE OR REPLACE FUNCTION vk._forget_coordinates_of(c_id bigint, keys text[], m_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT vk._citus_table('vk.embeddings') THEN
        RETURN;
    END IF;
    DELETE FROM vk.coordinates c
    USING vk.maps mp
    WHERE c.collection_id = c_id AND mp.model_id = c.model_id
      AND (m_id IS NULL OR mp.source_model_id = m_id) AND (keys IS NULL OR c.pk = ANY (keys));
END
$$;
COMMENT ON FUNCTION vk._forget_coordinates_of(bigint, text[], bigint) IS
    'Internal, on Citus: the coordinates of rows whose vectors went (what trigger embeddings_forget_coordinates does on one server).';

-- Settle a claimed row: its chunks past the new last one belong to an older,
-- longer text (all of them when the text is empty: chunks = 0), and its queue
-- row is done. Same transaction as the vectors.
CREATE OR REPLACE FUNCTION vk.finish_row_v1(collection_id bigint, pk text, model_id bigint, chunks integer)
RETURNS void
LANGUAGE sql AS $$
    DELETE FROM vk.embeddings e
    WHERE e.collection_id = finish_row_v1.collection_id AND e.pk = finish_row_v1.pk
      AND e.model_id = finish_row_v1.model_id AND e.chunk >= finish_row_v1.chunks;
    DELETE FROM vk.queue q
    WHERE q.collection_id = finish_row_v1.collection_id AND q.pk = finish_row_v1.pk
      AND q.model_id = finish_row_v1.model_id;
    -- An emptied text leaves its maps (the trigger does it on one server).
    SELECT vk._forget_coordinates_of(finish_row_v1.collection_id, ARRAY[finish_row_v1.pk], finish_row_v1.model_id)
    WHERE finish_row_v1.chunks = 0;
$$;
COMMENT ON FUNCTION vk.finish_row_v1(bigint, text, bigint, integer) IS
    'Worker contract 1: a claimed row is done; its chunks numbered chunks and above go (all of them for an empty text: chunks = 0).';

-- Retry later with exponential backoff; after max_attempts the row is dead
-- and keeps its error for vk.status and the operator.
CREATE OR REPLACE FUNCTION vk.fail_row_v1(
    collection_id bigint, pk text, model_id bigint, error text, max_attempts integer, backoff_seconds double precision
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    -- In epoch seconds: Citus refuses STABLE functions (now(), timestamptz +
    -- interval) beside column references in an UPDATE.
    failed_at double precision := extract(epoch FROM now());
BEGIN
    UPDATE vk.queue q
    SET attempts = q.attempts + 1,
        last_error = left(error, 4000),
        dead = q.attempts + 1 >= max_attempts,
        run_after = to_timestamp(failed_at + least(600, backoff_seconds * 2 ^ q.attempts))
    WHERE q.collection_id = fail_row_v1.collection_id AND q.pk = fail_row_v1.pk
      AND q.model_id = fail_row_v1.model_id;
END
$$;
COMMENT ON FUNCTION vk.fail_row_v1(bigint, text, bigint, text, integer, double precision) IS
    'Worker contract 1: a claimed row failed: record the error, retry after an exponential backoff, dead after max_attempts.';

-- A provider that throttles (429), fails (5xx) or cannot be reached says nothing about the row: its
-- rows wait, and their attempts stay as they were, so no storm or outage makes a row dead.
CREATE OR REPLACE FUNCTION vk.defer_row_v1(
    collection_id bigint, pk text, model_id bigint, reason text, seconds double precision
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    -- In epoch seconds, as vk.fail_row_v1 (Citus).
    deferred_at double precision := extract(epoch FROM now());
BEGIN
    UPDATE vk.queue q
    SET last_error = left(reason, 4000),
        run_after = to_timestamp(deferred_at + least(3600, greatest(0, seconds)))
    WHERE q.collection_id = defer_row_v1.collection_id AND q.pk = defer_row_v1.pk
      AND q.model_id = defer_row_v1.model_id;
END
$$;
COMMENT ON FUNCTION vk.defer_row_v1(bigint, text, bigint, text, double precision) IS
    'Worker contract 1 (revision 0023): a claimed row''s encoder is busy or unreachable (an API that throttles, fails or is down): retry after seconds (at most an hour), keeping its attempts; the reason shows in last_error.';

CREATE OR REPLACE FUNCTION vk.record_api_usage_v1(
    model_id bigint, job_id bigint, requests bigint, inputs bigint, tokens bigint, retries bigint,
    throttled_seconds double precision, failures bigint
) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO vk.api_usage AS u
        (model_id, job_id, requests, inputs, tokens, retries, throttled_seconds, failures)
    VALUES (model_id, coalesce(job_id, 0), requests, inputs, tokens, retries, throttled_seconds, failures)
    ON CONFLICT (model_id, job_id) DO UPDATE
    SET requests = u.requests + EXCLUDED.requests, inputs = u.inputs + EXCLUDED.inputs,
        tokens = u.tokens + EXCLUDED.tokens, retries = u.retries + EXCLUDED.retries,
        throttled_seconds = u.throttled_seconds + EXCLUDED.throttled_seconds,
        failures = u.failures + EXCLUDED.failures, last_at = now();
$$;
COMMENT ON FUNCTION vk.record_api_usage_v1(bigint, bigint, bigint, bigint, bigint, bigint, double precision, bigint) IS
    'Worker contract 1 (revision 0023): add what an encoder behind an API used to vk.api_usage, for a model version and a job (NULL or 0: outside any job).';

CREATE OR REPLACE FUNCTION vk.retry_dead(collection_name text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE vk.queue q SET dead = false, attempts = 0, run_after = now()
    WHERE q.dead AND (collection_name IS NULL OR q.collection_id = (vk._collection(collection_name)).id);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('vk_queue', '');
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION vk.retry_dead(text) IS 'Give dead queue rows (all, or one collection''s) a fresh set of attempts.';

-- Worker contract: where the queue stands, for metrics and health probes. Every
-- (collection, version) a collection embeds with, and any other the queue holds
-- rows of, so a depth reads 0 rather than vanishing. One pass over vk.queue.
CREATE OR REPLACE FUNCTION vk.queue_state_v1()
RETURNS TABLE (collection text, model text, queued bigint, dead bigint,
               oldest_seconds double precision, oldest_ready_seconds double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    WITH counts AS (
        SELECT q.collection_id, q.model_id,
               count(*) FILTER (WHERE NOT q.dead) AS queued,
               count(*) FILTER (WHERE q.dead) AS dead,
               extract(epoch FROM now() - min(q.enqueued_at) FILTER (WHERE NOT q.dead))::float8 AS oldest_seconds,
               extract(epoch FROM now() - min(q.enqueued_at) FILTER (WHERE NOT q.dead AND q.run_after <= now()))::float8
                   AS oldest_ready_seconds
        FROM vk.queue q
        GROUP BY q.collection_id, q.model_id
    )
    SELECT c.name AS collection, m.name || '@' || m.version AS model, coalesce(n.queued, 0) AS queued,
           coalesce(n.dead, 0) AS dead, n.oldest_seconds, n.oldest_ready_seconds
    FROM (SELECT cm.collection_id, cm.model_id FROM vk.collection_models cm
          UNION SELECT counts.collection_id, counts.model_id FROM counts) p
    JOIN vk.collections c ON c.id = p.collection_id
    JOIN vk.models m ON m.id = p.model_id
    LEFT JOIN counts n ON n.collection_id = p.collection_id AND n.model_id = p.model_id
    ORDER BY c.name, m.name || '@' || m.version
$$;
COMMENT ON FUNCTION vk.queue_state_v1() IS
    'Worker contract 1 (revision 0014): per collection and model version, rows queued (not dead), dead rows, and the age in seconds of the oldest queued row and of the oldest one ready to claim now (NULL when none).';
