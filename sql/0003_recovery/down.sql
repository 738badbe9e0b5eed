-- Undo revision 0003. Adopted tables themselves are untouched.
DROP FUNCTION IF EXISTS vk.adopted_page_v1(bigint, text, integer);
DROP FUNCTION IF EXISTS vk.recover_nearest_page_v1(bigint, text, integer, bigint, bigint);
DROP FUNCTION IF EXISTS vk.recover_adopted(text, text, text, jsonb);
DROP FUNCTION IF EXISTS vk.compatible_models(vk.models);
DROP FUNCTION IF EXISTS vk.adopt(regclass, text, text, text, text);
DROP FUNCTION IF EXISTS vk.adopted(text);
DROP TABLE IF EXISTS vk.recovered;
DROP TABLE IF EXISTS vk.adopted;
