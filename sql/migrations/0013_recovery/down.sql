-- Undo revision 0013, before the definitions of 0012 are restored.
ALTER TABLE vk.predictions DROP COLUMN recovered;
-- Rows of methods 0012 does not know go with the constraint that refuses them.
DELETE FROM vk.recovered WHERE method NOT IN ('nearest', 'vec2text');
ALTER TABLE vk.recovered DROP CONSTRAINT recovered_method_check;
ALTER TABLE vk.recovered ADD CONSTRAINT recovered_method_check CHECK (method IN ('nearest', 'vec2text'));
