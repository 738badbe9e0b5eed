-- Text queries: a text's vector, in SQL, from the encoders of running workers.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.
--
-- The database cannot run an encoder, and a caller's transaction cannot hand
-- a request to a worker before it commits. So the request travels on a
-- connection of its own (dblink, to this same database), where it commits at
-- once and wakes the workers (NOTIFY vk_embed); the worker's interactive
-- lane, which the embedding queue never delays, writes the vector into
-- vk.embed_cache and deletes the request (and its text); the waiting session
-- reads it there. The cache answers a repeated text with no worker at all.
--
-- Bounds: a request (the only place a query's text is kept) lives until it
-- is answered or its caller stops waiting; a cached vector (keyed by version
-- and text hash, no text) is served for one hour and at most the 10,000 most
-- recent are kept.

-- How long a cached vector is served.
CREATE OR REPLACE FUNCTION vk._embed_cache_ttl() RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN interval '1 hour';
COMMENT ON FUNCTION vk._embed_cache_ttl() IS 'Internal: how long a text query''s cached vector is served (one hour).';

CREATE OR REPLACE FUNCTION vk._embed_timeout() RETURNS interval
LANGUAGE plpgsql STABLE AS $$
DECLARE
    setting text := nullif(current_setting('vk.embed_timeout', true), '');
BEGIN
    RETURN coalesce(setting::interval, interval '5 seconds');
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
    RAISE EXCEPTION 'vectorkeep: vk.embed_timeout is %, not an interval', quote_literal(setting)
        USING ERRCODE = 'invalid_parameter_value', HINT = 'For example: SET vk.embed_timeout = ''10s'';';
END
$$;
COMMENT ON FUNCTION vk._embed_timeout() IS
    'Internal: how long a text query waits for a worker: the setting vk.embed_timeout (SET vk.embed_timeout = ''10s''), 5 seconds by default.';

-- The connection that carries requests out of the caller's transaction,
-- opened once per session as vk's owner and reused (a new one costs a
-- backend start, about 2 ms). Reused only where the session's own role can
-- neither use dblink nor gain more through it: otherwise it could send its
-- own statements down this connection, so the connection is closed after
-- each request (vk._embed_vector).
CREATE OR REPLACE FUNCTION vk._embed_link(OUT schema_name name, OUT link text, OUT kept boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    conninfo text;
BEGIN
    SELECT n.nspname INTO schema_name
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'dblink';
    IF schema_name IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: text queries need the dblink extension, which is not installed'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'As a superuser: CREATE SCHEMA vk_dblink; REVOKE ALL ON SCHEMA vk_dblink FROM PUBLIC; '
                      || 'CREATE EXTENSION dblink SCHEMA vk_dblink; (README, "Text queries").';
    END IF;
    kept := session_user = current_user
        OR (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user)
        OR NOT (has_schema_privilege(session_user, schema_name, 'USAGE')
                AND has_function_privilege(session_user, format('%I.dblink(text, text)', schema_name), 'EXECUTE'));
    link := 'vk_embed';
    IF kept THEN
        EXECUTE format('SELECT %L = ANY (coalesce(%I.dblink_get_connections(), ''{}''))', link, schema_name) INTO kept;
        IF kept THEN
            RETURN;
        END IF;
        kept := true;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = 'vk_loopback') THEN
        -- Password-authenticated servers: a foreign server with a user mapping for vk's owner.
        EXECUTE format('SELECT %I.dblink_connect(%L, %L)', schema_name, link, 'vk_loopback');
        RETURN;
    END IF;
    conninfo := format('host=%s port=%s dbname=%s user=%s application_name=%s',
                       split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
                       quote_literal(current_database()), quote_literal(current_user),
                       quote_literal('vectorkeep text query'));
    BEGIN
        EXECUTE format('SELECT %I.dblink_connect_u(%L, %L)', schema_name, link, conninfo);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'vectorkeep: text queries cannot connect back to this database: %', SQLERRM
            USING ERRCODE = 'sqlclient_unable_to_establish_sqlconnection',
                  HINT = 'Where a password is required, create the loopback server: CREATE SERVER vk_loopback '
                      || 'FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host ''...'', dbname ''...''); CREATE USER MAPPING FOR '
                      || current_user || ' SERVER vk_loopback OPTIONS (user ''...'', password ''...''); (README, "Text queries").';
    END;
END
$$;
COMMENT ON FUNCTION vk._embed_link() IS
    'Internal: the dblink connection (as vk''s owner, to this database) that carries text queries to workers; opened once per session where no caller can reach it.';

-- A text's vector with a model version: from the cache, or from a worker.
CREATE OR REPLACE FUNCTION vk._embed_vector(model_id bigint, input text) RETURNS vector
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    sha     bytea;
    v       vector;
    route   record;
    request bigint;
    answer  text;
    problem text;
BEGIN
    IF input IS NULL OR input !~ '[^[:space:]]' THEN
        RAISE EXCEPTION 'vectorkeep: the query text is %', CASE WHEN input IS NULL THEN 'NULL' ELSE 'empty' END
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the text to search for.';
    END IF;
    IF length(input) > 100000 THEN
        RAISE EXCEPTION 'vectorkeep: the query text has % characters, over the limit of 100000', length(input)
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Search with a shorter text (an encoder reads only its window anyway).';
    END IF;
    sha := sha256(convert_to(input, 'UTF8'));
    SELECT c.embedding INTO v FROM vk.embed_cache c
    WHERE c.model_id = _embed_vector.model_id AND c.text_sha256 = sha AND c.created_at > now() - vk._embed_cache_ttl();
    IF v IS NOT NULL THEN
        RETURN v;
    END IF;
    SELECT * INTO route FROM vk._embed_link();
    BEGIN
        EXECUTE format('SELECT r FROM %I.dblink($1, $2) AS t(r bigint)', route.schema_name) INTO request
            USING route.link, format('SELECT vk._request_embedding(%s, %L)', model_id, input);
        EXECUTE format('SELECT a, p FROM %I.dblink($1, $2) AS t(a text, p text)', route.schema_name)
            INTO answer, problem
            USING route.link, format('SELECT * FROM vk._await_embedding(%s, %L)', request, vk._embed_timeout());
    EXCEPTION WHEN OTHERS THEN
        IF NOT route.kept THEN
            EXECUTE format('SELECT %I.dblink_disconnect($1)', route.schema_name) USING route.link;
        END IF;
        RAISE;
    END;
    IF NOT route.kept THEN
        EXECUTE format('SELECT %I.dblink_disconnect($1)', route.schema_name) USING route.link;
    END IF;
    IF problem = 'timeout' THEN
        RAISE EXCEPTION 'vectorkeep: no worker answered the text query within %', vk._embed_timeout()
            USING ERRCODE = 'query_canceled',
                  HINT = 'Workers may be busy or loading the model (its first load can take a while): '
                      || 'wait longer with SET vk.embed_timeout = ''30s''; or check that one runs (vectorkeep worker).';
    ELSIF problem IS NOT NULL THEN
        RAISE EXCEPTION 'vectorkeep: the worker could not encode the text query with %: %',
                (SELECT vk.model_label(m) FROM vk.models m WHERE m.id = _embed_vector.model_id), problem
            USING ERRCODE = 'data_exception';
    END IF;
    RETURN answer::vector;
END
$$;
COMMENT ON FUNCTION vk._embed_vector(bigint, text) IS
    'Internal: a text''s vector with a model version, from the cache or from a running worker (vk.embed).';

-- Run on the loopback connection, where it commits at once.
CREATE OR REPLACE FUNCTION vk._request_embedding(model_id bigint, input text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    id bigint;
BEGIN
    -- On a hot standby nothing can be queued, and workers are on the primary.
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'vectorkeep: a text query that is not in the cache cannot be encoded on a read replica'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Encode it on the primary (SELECT vk.embed(model, text)) and search here with the vector; '
                      || 'texts queried on the primary in the last hour are answered here from the cache.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                   WHERE a.datname = current_database() AND a.application_name LIKE 'vectorkeep interactive %') THEN
        RAISE EXCEPTION 'vectorkeep: no worker is running to encode the text query'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Start one (vectorkeep worker): its interactive lane encodes text queries. '
                      || 'Texts queried in the last hour are answered from the cache without one.';
    END IF;
    -- A request is worth nothing after a crash (its caller is gone with it):
    -- no wait for the WAL flush at commit.
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO vk.embed_requests (model_id, text_sha256, input)
    VALUES (model_id, sha256(convert_to(input, 'UTF8')), input)
    RETURNING embed_requests.id INTO id;
    PERFORM pg_notify('vk_embed', id::text);
    RETURN id;
END
$$;
COMMENT ON FUNCTION vk._request_embedding(bigint, text) IS
    'Internal: queue a text query for the workers'' interactive lane and wake them (runs on vk''s loopback connection).';

-- Run on the loopback connection: each statement sees what workers have
-- committed since the last one. It returns rather than raises, so that its
-- clean-up (the request and its text deleted) commits; the caller raises.
CREATE OR REPLACE FUNCTION vk._await_embedding(request_id bigint, timeout interval, OUT answer text, OUT problem text)
LANGUAGE plpgsql AS $$
DECLARE
    r        vk.embed_requests;
    asked    vk.embed_requests;
    deadline timestamptz := clock_timestamp() + timeout;
BEGIN
    SELECT * INTO STRICT asked FROM vk.embed_requests x WHERE x.id = request_id;
    LOOP
        SELECT * INTO r FROM vk.embed_requests x WHERE x.id = request_id;
        IF r.id IS NULL THEN
            SELECT c.embedding::text INTO STRICT answer FROM vk.embed_cache c
            WHERE c.model_id = asked.model_id AND c.text_sha256 = asked.text_sha256;
            RETURN;
        END IF;
        IF r.error IS NOT NULL OR clock_timestamp() > deadline THEN
            DELETE FROM vk.embed_requests x WHERE x.id = request_id;
            problem := coalesce(r.error, 'timeout');
            RETURN;
        END IF;
        -- pg_sleep rounds up to whole milliseconds and then some: 0.0005 sleeps about 1 ms.
        PERFORM pg_sleep(0.0005);
    END LOOP;
END
$$;
COMMENT ON FUNCTION vk._await_embedding(bigint, interval) IS
    'Internal: wait for a worker''s answer to a text query: the vector (as text), or the problem (the worker''s error, or timeout); the request is deleted either way (runs on vk''s loopback connection).';

CREATE OR REPLACE FUNCTION vk._query_vector(m vk.models, query_text text) RETURNS vector
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- A vector literal stays the vector it was before text queries existed.
    IF query_text ~ '^\s*\[[-+0-9.eE,\s]*\]\s*$' THEN
        PERFORM vk._check_dimension(query_text::vector, m);
        RETURN query_text::vector;
    END IF;
    RETURN vk._embed_vector(m.id, query_text);
END
$$;
COMMENT ON FUNCTION vk._query_vector(vk.models, text) IS
    'Internal: a text query''s vector with a model version (a vector literal is read as itself).';

CREATE OR REPLACE FUNCTION vk.embed(model text, input text) RETURNS vector
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    m vk.models := vk._require_usable(vk.model(model));
BEGIN
    IF m.kind = 'external' THEN
        RAISE EXCEPTION 'vectorkeep: % is an external model: its vectors come from the application, not from a worker',
                vk.model_label(m)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN vk._embed_vector(m.id, input);
END
$$;
COMMENT ON FUNCTION vk.embed(text, text) IS
    'A text''s vector with a ready encoder version ("name" or "name@version"), computed by a running worker (its interactive lane, never delayed by the embedding queue) or taken from the cache of the last hour''s queries. Waits at most vk.embed_timeout (5s by default; SET vk.embed_timeout = ''10s'') and raises when no worker answers.';

-- The workers' interactive lane (worker contract 1).
CREATE OR REPLACE FUNCTION vk.claim_embed_requests_v1(batch_size integer)
RETURNS TABLE (id bigint, model_id bigint, input text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.id, r.model_id, r.input FROM vk.embed_requests r
    WHERE r.error IS NULL ORDER BY r.id LIMIT batch_size FOR UPDATE SKIP LOCKED;
$$;
COMMENT ON FUNCTION vk.claim_embed_requests_v1(integer) IS
    'Worker contract 1: lock up to batch_size text queries waiting for a vector (the interactive lane).';

CREATE OR REPLACE FUNCTION vk.answer_embed_request_v1(request_id bigint, embedding vector) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    r vk.embed_requests;
BEGIN
    DELETE FROM vk.embed_requests x WHERE x.id = request_id RETURNING * INTO r;
    IF r.id IS NULL THEN
        RETURN;  -- its caller stopped waiting
    END IF;
    -- The caller waits for this commit; a cached vector lost in a crash is computed again.
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM vk._check_dimension(embedding, m) FROM vk.models m WHERE m.id = r.model_id;
    INSERT INTO vk.embed_cache AS c (model_id, text_sha256, embedding) VALUES (r.model_id, r.text_sha256, embedding)
    ON CONFLICT (model_id, text_sha256) DO UPDATE SET embedding = EXCLUDED.embedding, created_at = now();
END
$$;
COMMENT ON FUNCTION vk.answer_embed_request_v1(bigint, vector) IS
    'Worker contract 1: a text query''s vector: cached by version and text hash; the request, with its text, is deleted.';

CREATE OR REPLACE FUNCTION vk.fail_embed_request_v1(request_id bigint, error text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE vk.embed_requests SET error = left(fail_embed_request_v1.error, 4000) WHERE id = request_id;
$$;
COMMENT ON FUNCTION vk.fail_embed_request_v1(bigint, text) IS
    'Worker contract 1: a text query could not be encoded: its caller raises the error.';

CREATE OR REPLACE FUNCTION vk.prune_embed_cache_v1() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM vk.embed_cache c
    WHERE c.created_at < now() - vk._embed_cache_ttl()
       OR c.created_at < (SELECT x.created_at FROM vk.embed_cache x ORDER BY x.created_at DESC OFFSET 10000 LIMIT 1);
    GET DIAGNOSTICS n = ROW_COUNT;
    -- Requests whose caller gave up without deleting them (a killed session).
    DELETE FROM vk.embed_requests r WHERE r.requested_at < now() - interval '10 minutes';
    RETURN n;
END
$$;
COMMENT ON FUNCTION vk.prune_embed_cache_v1() IS
    'Worker contract 1: drop cached query vectors older than an hour or beyond the 10,000 most recent, and requests abandoned for 10 minutes.';

-- The versions a worker's interactive lane loads before the first query.
CREATE OR REPLACE FUNCTION vk.search_models_v1() RETURNS SETOF bigint
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT DISTINCT c.default_model_id FROM vk.collections c WHERE c.default_model_id IS NOT NULL;
END;
COMMENT ON FUNCTION vk.search_models_v1() IS
    'Worker contract 1: the model versions collections are searched with (the interactive lane loads them at start).';
