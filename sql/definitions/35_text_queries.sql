-- Text queries: a text's vector, in SQL, from the encoders of running workers.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.
--
-- The database cannot run an encoder, and a caller's transaction cannot hand
-- a request to a worker before it commits. So the request travels on a
-- connection of its own (dblink, to this same database, as vk's owner),
-- where it commits at once and wakes the workers (NOTIFY vk_embed). A
-- worker's interactive lane, which the embedding queue never delays, claims
-- it, encodes it and writes the vector on the request row itself (and into
-- vk.embed_cache); the caller reads the answer there and only then deletes
-- the request: nothing can be gone before it is read.
--
-- Waiting costs no CPU: until a lane claims the request the loopback sleeps
-- 1, 2, 4, then 8 ms; once claimed, it waits on the request's advisory lock,
-- which the lane holds from its claim until its answer is committed. The
-- caller waits in slices of at most 100 ms, so a cancel or statement_timeout
-- is honoured within one slice on every PostgreSQL version.
--
-- A request belongs to its caller's backend and its loopback backend: when
-- either is gone the lanes delete it at their next claim, within a second.
-- The caller closes its loopback connection on every error, cancel
-- included; a caller whose client was killed ends within 250 ms, as revision
-- 0015 sets client_connection_check_interval for the database.
--
-- Fairness: a lane takes requests in turn across login roles (each role's
-- oldest first), at most 20,000 characters of text a batch, and answers each
-- batch as soon as it is encoded; a role may have at most 8 requests
-- waiting (vk._embed_limits).
--
-- Scope: the cache answers a login role only the texts that role asked.
-- Bounds: a request's text lives until it is answered, its caller stops
-- waiting or its backends are gone; a cached vector (keyed by version, role
-- and text hash, no text) is served for one hour and at most the 10,000
-- most recent are kept.

-- How long a cached vector is served.
CREATE OR REPLACE FUNCTION vk._embed_cache_ttl() RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN interval '1 hour';
COMMENT ON FUNCTION vk._embed_cache_ttl() IS 'Internal: how long a text query''s cached vector is served (one hour).';

-- What one login role may ask of the lanes at once, and the longest text.
CREATE OR REPLACE FUNCTION vk._embed_limits(OUT waiting_per_role integer, OUT max_chars integer,
                                            OUT batch_chars integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ROW(8, 20000, 20000);
COMMENT ON FUNCTION vk._embed_limits() IS
    'Internal: text query bounds: requests one login role may have waiting (8), characters of one query text (20,000: an encoder reads only its window anyway, and tokenizing 100,000 takes a lane 0.1 s), characters a lane encodes in one batch (20,000).';

CREATE OR REPLACE FUNCTION vk._embed_timeout() RETURNS interval
LANGUAGE plpgsql STABLE AS $$
DECLARE
    setting text := nullif(current_setting('vk.embed_timeout', true), '');
    t       interval;
BEGIN
    BEGIN
        t := coalesce(setting::interval, interval '5 seconds');
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_text_representation THEN
        RAISE EXCEPTION 'vectorkeep: vk.embed_timeout is %, not an interval', quote_literal(setting)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example: SET vk.embed_timeout = ''10s'';';
    END;
    -- A longer wait would hold a loopback backend and a request for nothing:
    -- a model loads in seconds, and a lane answers in turn.
    IF t < interval '0' OR t > interval '60 seconds' THEN
        RAISE EXCEPTION 'vectorkeep: vk.embed_timeout is %, outside 0 to 60 seconds', setting
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: SET vk.embed_timeout = ''10s''; (the first query of a model that is not loaded '
                      || 'yet may need 30s).';
    END IF;
    RETURN t;
END
$$;
COMMENT ON FUNCTION vk._embed_timeout() IS
    'Internal: how long a text query waits for a worker: the setting vk.embed_timeout (SET vk.embed_timeout = ''10s''), 5 seconds by default, at most 60.';

CREATE OR REPLACE FUNCTION vk._too_many_waiting(asked_by name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'vectorkeep: role % already has % text queries waiting, the most one role may have',
            asked_by, (vk._embed_limits()).waiting_per_role
        USING ERRCODE = 'configuration_limit_exceeded',
              HINT = 'Wait for their answers before sending more (the workers answer every role in turn), '
                  || 'or spread the queries over more roles.';
END
$$;
COMMENT ON FUNCTION vk._too_many_waiting(name) IS
    'Internal: the error of a text query over its login role''s limit of waiting requests (vk._embed_limits).';

-- Whether a backend's role may serve text queries: a lane's session is how
-- callers know a worker is there, and any session can name itself like one.
CREATE OR REPLACE FUNCTION vk._may_serve(role_id oid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN pg_has_role(role_id, 'vk_worker', 'MEMBER') OR pg_has_role(role_id, 'vk_admin', 'MEMBER')
    OR pg_has_role(role_id, (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'vk'), 'MEMBER')
    OR coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.oid = role_id), false);
COMMENT ON FUNCTION vk._may_serve(oid) IS
    'Internal: whether a role may run a worker''s interactive lane (a member of vk_worker, vk_admin or vk''s owner, or a superuser).';

-- Whether a backend is still there. Only the pid: its start time is hidden
-- from a role (vk's owner on a managed service) without pg_read_all_stats.
-- A quoted body: a SQL-standard one would be stored with the server's own
-- list of pg_stat_get_activity's columns, which differs between versions.
CREATE OR REPLACE FUNCTION vk._backend_alive(backend integer) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM pg_stat_get_activity(backend));
$$;
COMMENT ON FUNCTION vk._backend_alive(integer) IS 'Internal: whether a backend (pid) still runs.';

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
    -- Without the loopback server only a superuser can connect back (dblink_connect_u, over the
    -- socket); anyone else may not even read unix_socket_directories: both get the hint.
    BEGIN
        conninfo := format('host=%s port=%s dbname=%s user=%s application_name=%s',
                           split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
                           quote_literal(current_database()), quote_literal(current_user),
                           quote_literal('vectorkeep text query'));
        EXECUTE format('SELECT %I.dblink_connect_u(%L, %L)', schema_name, link, conninfo);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'vectorkeep: text queries cannot connect back to this database: %', SQLERRM
            USING ERRCODE = 'sqlclient_unable_to_establish_sqlconnection',
                  HINT = 'Where vk''s owner is not a superuser or a password is required, create the loopback server: '
                      || 'CREATE SERVER vk_loopback FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host ''...'', port ''...'', '
                      || 'dbname ''...''); CREATE USER MAPPING FOR '
                      || current_user || ' SERVER vk_loopback OPTIONS (user ''...'', password ''...''); (README, "Text queries").';
    END;
END
$$;
COMMENT ON FUNCTION vk._embed_link() IS
    'Internal: the dblink connection (as vk''s owner, to this database) that carries text queries to workers; opened once per session where no caller can reach it.';

-- The lock a lane holds on a request from its claim until its answer is
-- committed (session level: the claim commits before the encoding starts).
CREATE OR REPLACE FUNCTION vk._request_lock(request_id bigint, OUT space integer, OUT key integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ROW(1987012935, (request_id % 2147483647)::integer);
COMMENT ON FUNCTION vk._request_lock(bigint) IS
    'Internal: the advisory lock (two keys) a lane holds on a text query while it encodes it, and its caller waits on.';

-- A text's vector with a model version: from the caller's own cache, or from
-- a worker. The caller waits in slices of at most 100 ms (see the top).
CREATE OR REPLACE FUNCTION vk._embed_vector(model_id bigint, input text) RETURNS vector
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    m        vk.models;
    sha      bytea;
    v        vector;
    route    record;
    request  bigint;
    answer   text;
    problem  text;
    timeout  interval := vk._embed_timeout();
    deadline timestamptz;
BEGIN
    IF input IS NULL OR input !~ '[^[:space:]]' THEN
        RAISE EXCEPTION 'vectorkeep: the query text is %', CASE WHEN input IS NULL THEN 'NULL' ELSE 'empty' END
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the text to search for.';
    END IF;
    IF length(input) > (vk._embed_limits()).max_chars THEN
        RAISE EXCEPTION 'vectorkeep: the query text has % characters, over the limit of %',
                length(input), (vk._embed_limits()).max_chars
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Search with a shorter text (an encoder reads only its window anyway).';
    END IF;
    SELECT * INTO m FROM vk.models x WHERE x.id = _embed_vector.model_id;
    -- This runs as vk's owner: the caller is the session's login role. The
    -- callers' own checks (vk._require_usable) ran as their current role.
    IF m.id IS NULL OR NOT vk._may_use(m, session_user) THEN
        RAISE EXCEPTION 'vectorkeep: role % may not use model version %', session_user, _embed_vector.model_id
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A version trained on a table answers only roles that may read that table.';
    END IF;
    sha := sha256(convert_to(input, 'UTF8'));
    SELECT c.embedding INTO v FROM vk.embed_cache c
    WHERE c.model_id = m.id AND c.asked_by = session_user AND c.text_sha256 = sha
      AND c.created_at > now() - vk._embed_cache_ttl();
    IF v IS NOT NULL THEN
        RETURN v;
    END IF;
    -- The limit is the loopback's to enforce (vk._request_embedding); counted here
    -- first, a refusal costs no round trip. Refusals wait 100 ms: a client that
    -- retries at once would otherwise spin the server.
    IF (SELECT count(*) FROM vk.embed_requests r
        WHERE r.asked_by = session_user AND r.answer IS NULL AND r.error IS NULL)
       >= (vk._embed_limits()).waiting_per_role THEN
        PERFORM pg_sleep(0.1);
        PERFORM vk._too_many_waiting(session_user);
    END IF;
    SELECT * INTO route FROM vk._embed_link();
    BEGIN
        EXECUTE format('SELECT r FROM %I.dblink($1, $2) AS t(r bigint)', route.schema_name) INTO request
            USING route.link, format('SELECT vk._request_embedding(%s, %L, %L, %s)',
                                     m.id, input, session_user, pg_backend_pid());
        deadline := clock_timestamp() + timeout;
        LOOP
            EXECUTE format('SELECT a, p FROM %I.dblink($1, $2) AS t(a text, p text)', route.schema_name)
                INTO answer, problem
                USING route.link, format('SELECT * FROM vk._await_embedding(%s, %L, %L)', request,
                                         least(deadline - clock_timestamp(), interval '100 ms'),
                                         clock_timestamp() >= deadline);
            EXIT WHEN answer IS NOT NULL OR problem IS NOT NULL;
        END LOOP;
    EXCEPTION
        WHEN query_canceled THEN
            -- Cancelled mid-statement, the connection is busy: it goes, whoever
            -- the caller, and with its backend the request (the lanes delete
            -- requests whose backend has gone).
            EXECUTE format('SELECT %I.dblink_disconnect($1)', route.schema_name) USING route.link;
            RAISE;
        WHEN OTHERS THEN
            -- An error of the statement on the loopback (a limit, no worker)
            -- leaves the connection sound: it is kept only where it always is.
            IF NOT route.kept THEN
                EXECUTE format('SELECT %I.dblink_disconnect($1)', route.schema_name) USING route.link;
            END IF;
            RAISE;
    END;
    IF NOT route.kept THEN
        EXECUTE format('SELECT %I.dblink_disconnect($1)', route.schema_name) USING route.link;
    END IF;
    IF problem = 'timeout' THEN
        RAISE EXCEPTION 'vectorkeep: no worker answered the text query within %', timeout
            USING ERRCODE = 'query_canceled',
                  HINT = 'Workers may be busy or loading the model (its first load can take a while): '
                      || 'wait longer with SET vk.embed_timeout = ''30s''; or check that one runs (vectorkeep worker).';
    ELSIF problem IS NOT NULL THEN
        RAISE EXCEPTION 'vectorkeep: the worker could not encode the text query with %: %', vk.model_label(m), problem
            USING ERRCODE = 'data_exception';
    END IF;
    RETURN answer::vector;
END
$$;
COMMENT ON FUNCTION vk._embed_vector(bigint, text) IS
    'Internal: a text''s vector with a model version, from the login role''s own cache or from a running worker (vk.embed).';

-- Run on the loopback connection, where it commits at once.
CREATE OR REPLACE FUNCTION vk._request_embedding(model_id bigint, input text, asked_by name, caller_pid integer)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id      bigint;
    waiting integer;
BEGIN
    -- On a hot standby nothing can be queued, and workers are on the primary.
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'vectorkeep: a text query that is not in the cache cannot be encoded on a read replica'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Encode it on the primary (SELECT vk.embed(model, text)) and search here with the vector; '
                      || 'texts your role queried on the primary in the last hour are answered here from the cache.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                   WHERE a.datname = current_database() AND a.application_name LIKE 'vectorkeep interactive %'
                     AND vk._may_serve(a.usesysid)) THEN
        RAISE EXCEPTION 'vectorkeep: no worker is running to encode the text query'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Start one (vectorkeep worker) as a member of vk_worker: its interactive lane encodes text '
                      || 'queries. Texts your role queried in the last hour are answered from the cache without one.';
    END IF;
    -- One role at a time counts its own requests, so the limit holds under a burst.
    PERFORM pg_advisory_xact_lock(1987012936, hashtext(asked_by));
    SELECT count(*) INTO waiting FROM vk.embed_requests r
    WHERE r.asked_by = _request_embedding.asked_by AND r.answer IS NULL AND r.error IS NULL;
    IF waiting >= (vk._embed_limits()).waiting_per_role THEN
        PERFORM pg_sleep(0.1);  -- as in vk._embed_vector
        PERFORM vk._too_many_waiting(asked_by);
    END IF;
    -- A request is worth nothing after a crash (its caller is gone with it):
    -- no wait for the WAL flush at commit.
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO vk.embed_requests (model_id, text_sha256, input, asked_by, caller_pid, link_pid)
    VALUES (model_id, sha256(convert_to(input, 'UTF8')), input, asked_by, caller_pid, pg_backend_pid())
    RETURNING embed_requests.id INTO id;
    PERFORM pg_notify('vk_embed', id::text);
    RETURN id;
END
$$;
COMMENT ON FUNCTION vk._request_embedding(bigint, text, name, integer) IS
    'Internal: queue a text query for the workers'' interactive lanes and wake them, at most 8 waiting per login role (runs on vk''s loopback connection).';

-- Run on the loopback connection: each statement sees what lanes have
-- committed since the last one. It returns rather than raises, so that its
-- clean-up (the request and its text deleted) commits; the caller raises.
-- Both outputs NULL: no answer within this slice, ask again.
CREATE OR REPLACE FUNCTION vk._await_embedding(request_id bigint, wait interval, last boolean,
                                               OUT answer text, OUT problem text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deadline   timestamptz := clock_timestamp() + wait;
    claimer    integer;
    waited_for integer;
    nap        float8 := 0.001;
    lock_wait  text := current_setting('lock_timeout');
    space      integer := (vk._request_lock(request_id)).space;
    key        integer := (vk._request_lock(request_id)).key;
BEGIN
    LOOP
        SELECT r.answer::text, r.error, r.claimed_by INTO answer, problem, claimer
        FROM vk.embed_requests r WHERE r.id = request_id;
        IF NOT FOUND THEN
            problem := 'the request was dropped: its worker or its caller went away';
            RETURN;
        END IF;
        IF answer IS NOT NULL OR problem IS NOT NULL THEN
            DELETE FROM vk.embed_requests r WHERE r.id = request_id;
            RETURN;
        END IF;
        IF clock_timestamp() >= deadline THEN
            IF last THEN
                DELETE FROM vk.embed_requests r WHERE r.id = request_id;
                problem := 'timeout';
            END IF;
            RETURN;
        END IF;
        IF claimer IS NOT NULL AND claimer IS DISTINCT FROM waited_for THEN
            -- The lane holds the lock until its answer is committed.
            waited_for := claimer;
            PERFORM set_config('lock_timeout',
                               greatest(1, ceil(extract(epoch FROM deadline - clock_timestamp()) * 1000))::text, true);
            BEGIN
                PERFORM pg_advisory_lock_shared(space, key);
                PERFORM pg_advisory_unlock_shared(space, key);
            EXCEPTION WHEN lock_not_available THEN
                NULL;  -- this slice is over: the next loop returns
            END;
            PERFORM set_config('lock_timeout', lock_wait, true);
        ELSE
            -- Not claimed yet (a lane claims within a millisecond of the
            -- notification), or its lane went away: back off to 8 ms.
            PERFORM pg_sleep(nap);
            nap := least(nap * 2, 0.008);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION vk._await_embedding(bigint, interval, boolean) IS
    'Internal: wait up to one slice for a worker''s answer to a text query: the vector (as text) or the problem (the worker''s error, or timeout on the last slice), the request deleted then; both NULL to wait again (runs on vk''s loopback connection).';

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

-- The workers' interactive lane (worker contract 1). A lane claims a batch
-- (and commits: the claim is visible to the callers), encodes it while it
-- holds each request's advisory lock, answers, commits, and releases the
-- locks. A previous release's lane claims, answers and commits in one
-- transaction; it works too (its callers back off instead of waiting on the
-- lock), and the locks it never releases go at its next claim.
CREATE OR REPLACE FUNCTION vk.claim_embed_requests_v1(batch_size integer)
RETURNS TABLE (id bigint, model_id bigint, input text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    picked bigint[];
BEGIN
    PERFORM pg_advisory_unlock_all();
    -- Requests whose caller or loopback backend is gone: nobody will read them.
    DELETE FROM vk.embed_requests r
    WHERE NOT (vk._backend_alive(r.caller_pid) AND vk._backend_alive(r.link_pid));
    -- In turn across roles (each one's oldest first), within a text budget
    -- (a batch answers together), always at least one.
    SELECT array_agg(t.id) INTO picked
    FROM (SELECT r.id, r.input, sum(length(r.input)) OVER w - length(r.input) AS before, row_number() OVER w AS n
          FROM (SELECT x.id, x.input, row_number() OVER (PARTITION BY x.asked_by ORDER BY x.id) AS turn
                FROM vk.embed_requests x
                WHERE x.answer IS NULL AND x.error IS NULL
                  AND (x.claimed_by IS NULL OR NOT vk._backend_alive(x.claimed_by))) r
          WINDOW w AS (ORDER BY r.turn, r.id)) t
    WHERE t.n <= batch_size AND (t.n = 1 OR t.before + length(t.input) <= (vk._embed_limits()).batch_chars);
    IF picked IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH claimed AS (
        SELECT x.id FROM vk.embed_requests x
        WHERE x.id = ANY (picked) AND x.answer IS NULL AND x.error IS NULL
        FOR UPDATE SKIP LOCKED
    ), locked AS (
        SELECT c.id, pg_advisory_lock((vk._request_lock(c.id)).space, (vk._request_lock(c.id)).key) FROM claimed c
    )
    UPDATE vk.embed_requests x SET claimed_by = pg_backend_pid()
    FROM locked l WHERE x.id = l.id
    RETURNING x.id, x.model_id, x.input;
END
$$;
COMMENT ON FUNCTION vk.claim_embed_requests_v1(integer) IS
    'Worker contract 1: claim up to batch_size text queries, in turn across login roles and within a text budget, holding each one''s advisory lock (vk._request_lock) until the lane releases it (pg_advisory_unlock_all) after its answers commit; requests whose caller has gone are deleted.';

CREATE OR REPLACE FUNCTION vk.answer_embed_request_v1(request_id bigint, embedding vector) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    r vk.embed_requests;
    m vk.models;
BEGIN
    -- The answer goes on the request, where its caller reads it (and then
    -- deletes it); the text is no longer needed.
    UPDATE vk.embed_requests x SET answer = embedding, input = ''
    WHERE x.id = request_id AND x.answer IS NULL AND x.error IS NULL
    RETURNING * INTO r;
    IF r.id IS NULL THEN
        RETURN;  -- its caller stopped waiting
    END IF;
    -- The caller waits for this commit; a cached vector lost in a crash is computed again.
    PERFORM set_config('synchronous_commit', 'off', true);
    -- The row read into a variable: Citus passes no whole row of its tables to a function.
    SELECT * INTO m FROM vk.models x WHERE x.id = r.model_id;
    PERFORM vk._check_dimension(embedding, m);
    INSERT INTO vk.embed_cache AS c (model_id, asked_by, text_sha256, embedding)
    VALUES (r.model_id, r.asked_by, r.text_sha256, embedding)
    ON CONFLICT (model_id, text_sha256, asked_by) DO UPDATE SET embedding = EXCLUDED.embedding, created_at = EXCLUDED.created_at;
END
$$;
COMMENT ON FUNCTION vk.answer_embed_request_v1(bigint, vector) IS
    'Worker contract 1: a text query''s vector, written on the request for its caller (who deletes it) and cached for the role that asked; the text is dropped.';

CREATE OR REPLACE FUNCTION vk.fail_embed_request_v1(request_id bigint, error text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE vk.embed_requests SET error = left(fail_embed_request_v1.error, 4000), input = ''
    WHERE id = request_id AND answer IS NULL;
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
    -- Requests whose backends are gone are deleted at each claim; these are
    -- what a lane of a previous release left behind.
    DELETE FROM vk.embed_requests r WHERE r.requested_at < now() - interval '10 minutes';
    RETURN n;
END
$$;
COMMENT ON FUNCTION vk.prune_embed_cache_v1() IS
    'Worker contract 1: drop cached query vectors older than an hour or beyond the 10,000 most recent, and requests abandoned for 10 minutes.';

-- The versions a worker's interactive lane loads before the first query.
CREATE OR REPLACE FUNCTION vk.search_models_v1() RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT DISTINCT c.default_model_id FROM vk.collections c WHERE c.default_model_id IS NOT NULL;
$$;
COMMENT ON FUNCTION vk.search_models_v1() IS
    'Worker contract 1: the model versions collections are searched with (the interactive lane loads them at start).';
