-- vectorkeep 0024, after the definitions (and, on downgrade, after 0023's are
-- restored): every collection's INSERT trigger function is written again by
-- the vk._install_insert_trigger now in place, so that it says why it writes
-- vk._queue_pairs's statement out (going down: 0023's text again).
DO $$
DECLARE
    c_id bigint;
BEGIN
    FOR c_id IN SELECT id FROM vk.collections ORDER BY id LOOP
        PERFORM vk._install_insert_trigger(c_id);
    END LOOP;
END
$$;
