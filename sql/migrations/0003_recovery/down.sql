-- Undo revision 0003 (the revision then re-applies 0002's jobs file, whose
-- vk.trainable_kinds this revision replaced). Adopted tables are untouched.
DROP FUNCTION IF EXISTS vk.evaluate_recovery(text, text, text, jsonb);
DROP FUNCTION IF EXISTS vk.put_recovered_v1(bigint, text, text, double precision, bigint, bigint, bigint, jsonb);
DROP FUNCTION IF EXISTS vk.inverter_for_v1(vk.models, text);
DROP FUNCTION IF EXISTS vk.adopted_page_v1(bigint, text, integer);
DROP FUNCTION IF EXISTS vk.recover_nearest_page_v1(bigint, text, integer, bigint, bigint);
DROP FUNCTION IF EXISTS vk.recover_adopted(text, text, text, jsonb);
DROP FUNCTION IF EXISTS vk.compatible_models(vk.models);
DROP FUNCTION IF EXISTS vk.adopt(regclass, text, text, text, text);
DROP FUNCTION IF EXISTS vk.adopted(text);
DROP TABLE IF EXISTS vk.recovered;
DROP TABLE IF EXISTS vk.adopted;
