-- vectorkeep 0009, after the current definitions: every collection's INSERT
-- trigger function is written again under its new name (vk._on_insert_c<id>,
-- calling vk._enqueued), and the old one goes.
DO $$
DECLARE
    c_id bigint;
BEGIN
    FOR c_id IN SELECT id FROM vk.collections ORDER BY id LOOP
        PERFORM vk._install_insert_trigger(c_id);
        EXECUTE format('DROP FUNCTION IF EXISTS vk.on_insert_c%s()', c_id);
    END LOOP;
END
$$;
