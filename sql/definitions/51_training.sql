-- Training: the public calls that queue train and reembed jobs and their
-- schedules (vk.train, vk.reembed, vk.schedule_train), and what the jobs read
-- and queue through the worker contract (texts, pairs, row vectors, pages of
-- keys, snapshots).
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

-- A train job's params: the model name, its kind, and the kind's parameters
-- checked and completed (vk._train_params), as the job will use them.
CREATE OR REPLACE FUNCTION vk._train_job(model_name text, kind text, params jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF model_name IS NULL OR model_name !~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]*$' THEN
        RAISE EXCEPTION 'vectorkeep: bad model name %', coalesce(quote_literal(model_name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Letters, digits and _ . : / - only; no @ (versions are numbered for you).';
    END IF;
    RETURN jsonb_build_object('model', model_name, 'kind', kind, 'params', vk._train_params(kind, params));
END
$$;
COMMENT ON FUNCTION vk._train_job(text, text, jsonb) IS
    'Internal: a train job''s params (model, kind, params), the name and every parameter checked against vk.model_kinds, defaults filled in.';

-- The collection a model is trained on is always named: a default (it was
-- vk.documents, the sample corpus) silently trained the wrong texts under
-- the user's model name.
CREATE OR REPLACE FUNCTION vk._train_collection(collection text, call text) RETURNS vk.collections
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF collection IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: % needs collection => the collection whose texts it trains on', call
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Name it: SELECT %s(..., collection => %L); collections: %s.', call,
                                coalesce((SELECT min(x.name) FROM vk.collections x), 'documents'),
                                coalesce((SELECT string_agg(x.name, ', ' ORDER BY x.name) FROM vk.collections x), 'none'));
    END IF;
    RETURN vk._collection(collection);
END
$$;
COMMENT ON FUNCTION vk._train_collection(text, text) IS
    'Internal: the collection a train (or schedule_train) call names; NULL raises, listing the collections.';

CREATE OR REPLACE FUNCTION vk.train(model_name text, kind text, params jsonb DEFAULT '{}', collection text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c vk.collections := vk._train_collection(collection, 'vk.train');
BEGIN
    RETURN vk.submit_job_v1('train', vk._train_job(model_name, kind, params), c.id);
END
$$;
COMMENT ON FUNCTION vk.train(text, text, jsonb, text) IS
    'Queue a train job: a worker trains the next version of model_name (a trainable kind of vk.model_kinds) on the collection (always named), stores it, evaluates it and, for an encoder, re-embeds the collection with it. params are checked now against the kind (unknown names, types, bounds) and recorded with every default. Returns the job id.';

-- A collection is embedded with encoders (or adopted vectors that the
-- application writes itself), never an inverter, a map or a next-vector
-- model; a retired version named explicitly comes back.
CREATE OR REPLACE FUNCTION vk._encoder_for(c vk.collections, model text, roles text[]) RETURNS vk.models
LANGUAGE plpgsql AS $$
DECLARE
    m vk.models := vk._require_role(vk.model(model), roles, format('embed collection "%s"', c.name));
BEGIN
    IF m.status = 'retired' THEN
        UPDATE vk.models x SET status = 'ready', updated_at = now() WHERE x.id = m.id RETURNING * INTO m;
    END IF;
    RETURN vk._require_usable(m);
END
$$;
COMMENT ON FUNCTION vk._encoder_for(vk.collections, text, text[]) IS
    'Internal: the version to embed a collection with, of one of roles; other roles raise, a retired version is ready again.';

CREATE OR REPLACE FUNCTION vk.reembed(collection text, model text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c vk.collections := vk._collection(collection);
    m vk.models := vk._encoder_for(c, model, ARRAY['encoder']);  -- adopted vectors cannot be computed
BEGIN
    -- A version new to the collection is written without its HNSW index, which
    -- the job builds at the end; the search default keeps (or gets) it now.
    PERFORM vk._embed_with(c, m, m.id = c.default_model_id);
    RETURN vk.submit_job_v1('reembed', '{}', c.id, m.id);
END
$$;
COMMENT ON FUNCTION vk.reembed(text, text) IS
    'Queue a reembed job: fills vk.embeddings for an encoder version over the whole collection (keyset pages, resumable), then builds its HNSW index once (a version new to the collection is written without it; vk.status.index shows where it stands). From now on, new and changed rows are queued for that version too. A retired version named as name@N comes back. Returns the job id.';

CREATE OR REPLACE FUNCTION vk.schedule_train(
    model_name text, kind text, every interval, params jsonb DEFAULT '{}', collection text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c        vk.collections := vk._train_collection(collection, 'vk.schedule_train');
    k        vk.model_kinds := vk._kind(kind);
    sched_id bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM vk.schedules s WHERE s.enabled AND s.collection_id = c.id AND s.params ->> 'model' = model_name) THEN
        RAISE EXCEPTION 'vectorkeep: % is already retrained on "%" by a schedule', model_name, c.name
            USING ERRCODE = 'duplicate_object',
                  HINT = format('Stop it first: SELECT vk.unschedule(%L, %L);', model_name, c.name);
    END IF;
    -- Each run adds a version: by default only the three newest stay embedded.
    IF k.params ? 'keep' THEN
        params := jsonb_build_object('keep', 3) || coalesce(params, '{}');
    END IF;
    INSERT INTO vk.schedules (kind, params, collection_id, every)
    VALUES ('train', vk._train_job(model_name, kind, params), c.id, every)
    RETURNING vk.schedules.id INTO sched_id;
    RETURN sched_id;
END
$$;
COMMENT ON FUNCTION vk.schedule_train(text, text, interval, jsonb, text) IS
    'Retrain periodically: a train job for model_name is created now and then every interval (skipped while the last one still runs). params are checked now; an encoder keeps its 3 newest versions embedded unless params.keep says otherwise. Stop it with vk.unschedule. Returns the schedule id.';

CREATE OR REPLACE FUNCTION vk.unschedule(model_name text, collection text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    stopped integer;
BEGIN
    UPDATE vk.schedules s SET enabled = false
    WHERE s.enabled AND s.params ->> 'model' = model_name
      AND (collection IS NULL OR s.collection_id = vk.collection_id(collection));
    GET DIAGNOSTICS stopped = ROW_COUNT;
    IF stopped = 0 THEN
        RAISE EXCEPTION 'vectorkeep: no schedule retrains %', model_name || coalesce(format(' on "%s"', collection), '')
            USING ERRCODE = 'no_data_found',
                  HINT = 'Scheduled: ' || coalesce((SELECT string_agg(DISTINCT s.params ->> 'model', ', ') FROM vk.schedules s
                                                    WHERE s.enabled), 'none') || '.';
    END IF;
    RETURN stopped;
END
$$;
COMMENT ON FUNCTION vk.unschedule(text, text) IS
    'Stop retraining model_name on a schedule (on one collection, or all): the schedules are disabled, kept in vk.schedules with their jobs; a job already queued or running goes on (vk.cancel_job stops it). Returns how many were stopped.';

-- Worker contract: queue the next page of rows after after_key (NULL: from
-- the start) whose vector for (c, m) is missing or stale. Returns the page's
-- last key (NULL when the table is exhausted), the rows read and the rows
-- queued. The text comes from the author's function (vk_expr.texts_c<id>).
CREATE OR REPLACE FUNCTION vk.enqueue_page_v1(c_id bigint, m_id bigint, after_key text, page_size integer)
RETURNS TABLE (last_key text, scanned integer, queued integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    p_pk   text[];
    p_sha  bytea[];
    e_pk   text[];
    e_sha  bytea[];
    todo   text[];
    n      integer;
BEGIN
    -- One step at a time, the page, then its vectors, then the queue: on
    -- Citus one statement joining them would run the text function on the
    -- shards (and Citus takes no INSERT in a WITH).
    EXECUTE format('SELECT array_agg(t.pk ORDER BY t.n), '
                   '       array_agg(CASE WHEN t.body ~ ''[^[:space:]]'' THEN sha256(convert_to(t.body, ''UTF8'')) END '
                   '                 ORDER BY t.n) '
                   'FROM vk_expr.%I($1, $2) WITH ORDINALITY AS t(pk, body, n)', 'texts_c' || c_id)
        INTO p_pk, p_sha USING after_key, page_size;
    SELECT array_agg(e.pk), array_agg(e.text_sha256) INTO e_pk, e_sha
    FROM vk.embeddings e
    WHERE e.collection_id = c_id AND e.model_id = m_id AND e.chunk = 0 AND e.pk = ANY (p_pk);
    -- Rows with text whose vector is missing or was made from another text.
    SELECT array_agg(p.pk) INTO todo
    FROM unnest(p_pk, p_sha) AS p(pk, sha)
    WHERE p.sha IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM unnest(e_pk, e_sha) AS e(pk, sha) WHERE e.pk = p.pk AND e.sha = p.sha);
    INSERT INTO vk.queue (collection_id, pk, model_id, priority)
    SELECT c_id, t.pk, m_id, 2 FROM unnest(todo) AS t(pk)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN QUERY SELECT p_pk[cardinality(p_pk)], coalesce(cardinality(p_pk), 0), n;
END
$$;
COMMENT ON FUNCTION vk.enqueue_page_v1(bigint, bigint, text, integer) IS
    'Worker contract 1: queue the next keyset page of rows whose vector for (collection, model) is missing or stale; returns the page''s last key, rows read, rows queued.';

-- Worker contract: a train job's new version joins its collection as a
-- backfill (no HNSW or keyword index until its reembed job has written the
-- vectors), unless it is already the collection's search default.
CREATE OR REPLACE FUNCTION vk.backfill_v1(c_id bigint, m_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c vk.collections := vk.collection_v1(c_id);
    m vk.models := vk.model_v1(m_id);
BEGIN
    RETURN vk._embed_with(c, m, m.id = c.default_model_id);
END
$$;
COMMENT ON FUNCTION vk.backfill_v1(bigint, bigint) IS
    'Worker contract 1 (revision 0014): keep a collection embedded with a version from now on, its HNSW index left for the reembed job to build after the backfill (unless it is the search default); false when it already was.';

-- Worker contract: the data a job reads, for its record (the owner reads
-- only the key column: the count and largest key of the table).
CREATE OR REPLACE FUNCTION vk.snapshot_v1(c_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c    vk.collections;
    snap jsonb;
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = c_id;
    EXECUTE format('SELECT jsonb_build_object(''collection'', %L, ''rows'', count(*), ''max_key'', max(s.%I)::text, '
                   '''at'', now(), ''xmin'', pg_snapshot_xmin(pg_current_snapshot())::text) FROM %s s',
                   c.name, c.pk_column, c.source)
        INTO snap;
    RETURN snap;
END
$$;
COMMENT ON FUNCTION vk.snapshot_v1(bigint) IS
    'Worker contract 1: what a job reads of a collection (rows, max key, time, snapshot xmin), for its record.';

-- Worker contract: every text of a collection with its key, in key order
-- (streamed by a server-side cursor; held-out rows are chosen by the caller),
-- read with the author's rights.
CREATE OR REPLACE FUNCTION vk.collection_texts_v1(c_id bigint) RETURNS TABLE (pk text, body text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT t.pk, t.body FROM vk_expr.%I(NULL, NULL) t WHERE t.body ~ ''[^[:space:]]''',
                                'texts_c' || c_id);
END
$$;
COMMENT ON FUNCTION vk.collection_texts_v1(bigint) IS
    'Worker contract 1: every non-empty text of a collection with its key, in key order (stream it with a server-side cursor).';


-- Worker contract: the jobs' other reads and writes.

CREATE OR REPLACE FUNCTION vk.collection_v1(collection_id bigint) RETURNS vk.collections
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (SELECT c FROM vk.collections c WHERE c.id = collection_id)
$$;
COMMENT ON FUNCTION vk.collection_v1(bigint) IS 'Worker contract 1: the vk.collections row of that id (NULL when none).';

CREATE OR REPLACE FUNCTION vk.record_snapshot_v1(job_id bigint, collection_id bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    snap jsonb;
BEGIN
    -- On Citus the snapshot reads a distributed table, then vk.jobs (a reference table) is written.
    PERFORM vk._one_connection_per_node();
    snap := vk.snapshot_v1(record_snapshot_v1.collection_id);
    UPDATE vk.jobs j SET snapshot = snap WHERE j.id = record_snapshot_v1.job_id;
    RETURN snap;
END
$$;
COMMENT ON FUNCTION vk.record_snapshot_v1(bigint, bigint) IS
    'Worker contract 1: record on the job what it reads of the collection (vk.snapshot_v1); returns it.';

CREATE OR REPLACE FUNCTION vk.queue_counts_v1(collection_id bigint, model_id bigint)
RETURNS TABLE (queued bigint, dead bigint, first_error text)
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT count(*), count(*) FILTER (WHERE q.dead), min(q.last_error) FILTER (WHERE q.dead)
    FROM vk.queue q WHERE q.collection_id = queue_counts_v1.collection_id AND q.model_id = queue_counts_v1.model_id;
$$;
COMMENT ON FUNCTION vk.queue_counts_v1(bigint, bigint) IS
    'Worker contract 1: queue rows of (collection, model) still there, how many are dead, and one dead row''s error.';

CREATE OR REPLACE FUNCTION vk.collection_pairs_v1(collection_id bigint, model_id bigint)
RETURNS TABLE (pk text, body text, embedding vector)
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT e.pk, e.body, e.embedding FROM vk.embeddings e
    WHERE e.collection_id = collection_pairs_v1.collection_id AND e.model_id = collection_pairs_v1.model_id
    ORDER BY e.pk;
$$;
COMMENT ON FUNCTION vk.collection_pairs_v1(bigint, bigint) IS
    'Worker contract 1: the (text, vector) pairs of a collection under a version, in key order: what a distilled model learns from.';

-- One vector a row (the mean of its chunks' vectors), with the hash of its
-- text, in key order; pks NULL means every row. Every chunk of a row carries
-- its row's hash: the first chunk's is taken (min(bytea) exists only from
-- PostgreSQL 18).
CREATE OR REPLACE FUNCTION vk.row_vectors_v1(collection_id bigint, model_id bigint, pks text[])
RETURNS TABLE (pk text, embedding vector, text_sha256 bytea)
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT e.pk, avg(e.embedding), (array_agg(e.text_sha256 ORDER BY e.chunk))[1] FROM vk.embeddings e
    WHERE e.collection_id = row_vectors_v1.collection_id AND e.model_id = row_vectors_v1.model_id
      AND (pks IS NULL OR e.pk = ANY (pks))
    GROUP BY e.pk ORDER BY e.pk;
$$;
COMMENT ON FUNCTION vk.row_vectors_v1(bigint, bigint, text[]) IS
    'Worker contract 1: one vector a row (the mean of its chunks), with its text''s hash, for the rows named (all when NULL).';
