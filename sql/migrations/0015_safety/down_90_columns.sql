-- Undo revision 0015, after the definitions of 0014 are restored (0015's use the columns).
ALTER TABLE vk.queue DROP COLUMN priority;
ALTER TABLE vk.embed_requests DROP COLUMN asked_by, DROP COLUMN caller_pid, DROP COLUMN link_pid,
    DROP COLUMN claimed_by, DROP COLUMN answer;
ALTER TABLE vk.embed_cache DROP COLUMN asked_by;
COMMENT ON TABLE vk.embed_requests IS
    'Text queries waiting for a worker (vk.embed); deleted when answered, or after their caller''s timeout.';
COMMENT ON TABLE vk.embed_cache IS
    'Vectors of recent text queries by model version and text hash (no text): kept one hour, at most 10,000.';
