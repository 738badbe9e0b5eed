-- Undo revision 0004.
ALTER TABLE vk.embeddings DROP COLUMN truncated;
