-- Undo revision 0010, before the definitions of 0009 are restored.
DROP SCHEMA vk_expr CASCADE;
DROP POLICY IF EXISTS operators ON vk.embeddings;
DROP POLICY IF EXISTS readers ON vk.embeddings;
DROP POLICY IF EXISTS operators ON vk.coordinates;
DROP POLICY IF EXISTS readers ON vk.coordinates;
DROP POLICY IF EXISTS operators ON vk.predictions;
DROP POLICY IF EXISTS readers ON vk.predictions;
DROP POLICY IF EXISTS operators ON vk.recovered;
DROP POLICY IF EXISTS readers ON vk.recovered;
ALTER TABLE vk.embeddings DISABLE ROW LEVEL SECURITY;
ALTER TABLE vk.coordinates DISABLE ROW LEVEL SECURITY;
ALTER TABLE vk.predictions DISABLE ROW LEVEL SECURITY;
ALTER TABLE vk.recovered DISABLE ROW LEVEL SECURITY;
DROP FUNCTION vk.attach(regclass, text, text, text, text, text);
ALTER TABLE vk.collections DROP COLUMN registered_by, DROP COLUMN order_registered_by,
    DROP COLUMN copies_row_security;
