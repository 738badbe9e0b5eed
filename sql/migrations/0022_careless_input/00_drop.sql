-- Revision 0022 changes what these return (a tidy row instead of a whole
-- vk.collections, vk.collection_models, vk.models, vk.adopted, vk.jobs or vk.hybrid_settings row) or their arguments (vk.retire's
-- confirm, vk.adopt's encoder); CREATE OR REPLACE cannot, so they go first
-- and sql/definitions/ creates them again. A downgrade restores 0021's.
DROP FUNCTION vk.attach(regclass, text, text, text, text, text, text, regconfig);
DROP FUNCTION vk.activate(text, text, jsonb);
DROP FUNCTION vk.set_storage(text, text);
DROP FUNCTION vk.retire(text, text);
DROP FUNCTION vk.adopt(regclass, text, text, text, text);
DROP FUNCTION vk.set_text_search(text, regconfig);
DROP FUNCTION vk.add_model(text, text, boolean);
DROP FUNCTION vk.set_metadata(text, text);
DROP FUNCTION vk.set_chunking(text, text, integer, integer);
DROP FUNCTION vk.set_order(text, text, text);
DROP FUNCTION vk.cancel_job(bigint);
DROP FUNCTION vk.set_hybrid_defaults(text, text, double precision, double precision);
DROP FUNCTION vk.tune_hybrid(text, jsonb, text);
