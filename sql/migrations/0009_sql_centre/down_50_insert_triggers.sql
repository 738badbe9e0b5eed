-- Undo revision 0009, after the definitions of 0008 are restored: every
-- collection's INSERT trigger function gets its old name back.
DO $$
DECLARE
    c_id bigint;
BEGIN
    FOR c_id IN SELECT id FROM vk.collections ORDER BY id LOOP
        PERFORM vk.install_insert_trigger_v2(c_id);
        EXECUTE format('DROP FUNCTION IF EXISTS vk._on_insert_c%s()', c_id);
    END LOOP;
END
$$;
