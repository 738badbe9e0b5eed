-- Undo revision 0015, before the definitions of 0014 are restored.
DROP INDEX vk.queue_ready_idx;
CREATE INDEX queue_ready_idx ON vk.queue (run_after) WHERE NOT dead;
TRUNCATE vk.embed_requests;
TRUNCATE vk.embed_cache;
ALTER TABLE vk.embed_cache DROP CONSTRAINT embed_cache_pkey;
ALTER TABLE vk.embed_cache ADD PRIMARY KEY (model_id, text_sha256);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
               WHERE d.datname = current_database() AND s.setrole = 0
                 AND 'client_connection_check_interval=250ms' = ANY (s.setconfig)) THEN
        EXECUTE format('ALTER DATABASE %I RESET client_connection_check_interval', current_database());
    END IF;
END
$$;
