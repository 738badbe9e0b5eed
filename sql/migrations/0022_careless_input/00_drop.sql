-- Revision 0022 changes what these return (a tidy row instead of a whole
-- vk.collections, vk.models or vk.adopted row) or their arguments (vk.retire's
-- confirm, vk.adopt's encoder); CREATE OR REPLACE cannot, so they go first
-- and sql/definitions/ creates them again. A downgrade restores 0021's.
DROP FUNCTION vk.attach(regclass, text, text, text, text, text, text, regconfig);
DROP FUNCTION vk.activate(text, text, jsonb);
DROP FUNCTION vk.set_storage(text, text);
DROP FUNCTION vk.retire(text, text);
DROP FUNCTION vk.adopt(regclass, text, text, text, text);
