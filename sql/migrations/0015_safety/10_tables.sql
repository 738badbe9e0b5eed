-- vectorkeep 0015: safety under attack and load. Run once by revision
-- 0015_safety, before the current definitions; undone by down.sql and
-- down_90_columns.sql.

-- Live rows first: the claim serves a row the application wrote before a
-- bulk statement's rows, and those before a backfill's (vk.claim_v1).
ALTER TABLE vk.queue ADD COLUMN priority smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 2);
COMMENT ON COLUMN vk.queue.priority IS
    'Claim order: 0 a row the application wrote, 1 a bulk statement''s row or a re-queue (set_chunking), 2 a backfill (a new version, vk.reembed); within one, oldest first.';
DROP INDEX vk.queue_ready_idx;
CREATE INDEX queue_ready_idx ON vk.queue (priority, run_after) WHERE NOT dead;

-- Text queries: a request belongs to the backends that asked (the caller's
-- and its loopback connection's) and dies with them; the answer is written
-- on the request, where its caller reads it, before the request is deleted.
-- Requests and cached vectors are ephemeral: nothing is lost by emptying them.
TRUNCATE vk.embed_requests;
ALTER TABLE vk.embed_requests
    ADD COLUMN asked_by   name NOT NULL,
    ADD COLUMN caller_pid integer NOT NULL,
    ADD COLUMN link_pid   integer NOT NULL,
    ADD COLUMN claimed_by integer,
    ADD COLUMN answer     vector;
COMMENT ON TABLE vk.embed_requests IS
    'Text queries waiting for a worker (vk.embed): asked by a login role from a backend and its loopback connection, claimed by a lane, answered on the row, deleted by the caller once read, or by the lane when either backend is gone.';
CREATE INDEX embed_requests_asked_by ON vk.embed_requests (asked_by) WHERE answer IS NULL AND error IS NULL;

-- The cache answers a login role only the texts that role asked: a hit tells
-- no role what another searched for.
TRUNCATE vk.embed_cache;
ALTER TABLE vk.embed_cache ADD COLUMN asked_by name NOT NULL;
ALTER TABLE vk.embed_cache DROP CONSTRAINT embed_cache_pkey;
ALTER TABLE vk.embed_cache ADD PRIMARY KEY (model_id, text_sha256, asked_by);
COMMENT ON TABLE vk.embed_cache IS
    'Vectors of recent text queries by model version, login role and text hash (no text): kept one hour, at most 10,000; a role is answered only from its own.';

-- A text query waits inside one statement. PostgreSQL notices that the
-- client of a running statement went away only where this is set: then a
-- killed client's backend ends within 250 ms, and with it its loopback
-- connection and its request. Set for this database unless a DBA chose a
-- value (or the migrating role does not own the database: README).
DO $$
BEGIN
    IF current_setting('client_connection_check_interval') = '0'
       AND pg_has_role((SELECT d.datdba FROM pg_database d WHERE d.datname = current_database()), 'MEMBER') THEN
        EXECUTE format('ALTER DATABASE %I SET client_connection_check_interval = ''250ms''', current_database());
    END IF;
END
$$;

-- Text queries take the caller's role and backend, and wait in slices.
DROP FUNCTION vk._request_embedding(bigint, text);
DROP FUNCTION vk._await_embedding(bigint, interval);
