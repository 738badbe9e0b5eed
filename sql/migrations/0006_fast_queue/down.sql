-- Undo revision 0006: every collection's INSERT trigger calls the generic
-- vk.on_insert_v1 again; attach and detach get their old names back. The
-- migration then re-applies the idempotent files of revisions 0001-0005,
-- which restores vk.enqueued_v1 (a NOTIFY per statement).
DO $$
DECLARE
    c vk.collections;
BEGIN
    FOR c IN SELECT * FROM vk.collections LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS vk_queue_insert ON %s', c.source);
        EXECUTE format('CREATE TRIGGER vk_queue_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS vk_new '
                       'FOR EACH STATEMENT EXECUTE FUNCTION vk.on_insert_v1(%s)', c.source, c.id);
        EXECUTE format('DROP FUNCTION IF EXISTS %s()', vk.insert_trigger_name(c.id));
    END LOOP;
END
$$;
DROP FUNCTION vk.attach(regclass, text, text, text, text);
DROP FUNCTION vk.detach(text);
ALTER FUNCTION vk.attach_v1(regclass, text, text, text, text) RENAME TO attach;
ALTER FUNCTION vk.detach_v1(text) RENAME TO detach;
DROP FUNCTION vk.install_insert_trigger_v2(bigint);
DROP FUNCTION vk.insert_trigger_name(bigint);
