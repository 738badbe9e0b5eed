-- vectorkeep 0015, after the definitions (and, on downgrade, after 0014's are
-- restored): every collection's INSERT trigger function is written again by
-- the vk._install_insert_trigger now in place, so that it writes the queue's
-- priority column (or, going down, stops writing it before the column goes).
DO $$
DECLARE
    c_id bigint;
BEGIN
    FOR c_id IN SELECT id FROM vk.collections ORDER BY id LOOP
        PERFORM vk._install_insert_trigger(c_id);
    END LOOP;
END
$$;
