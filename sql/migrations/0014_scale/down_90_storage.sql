-- Undo revision 0014, after the definitions of 0013 are restored (0014's use the column).
ALTER TABLE vk.models DROP COLUMN storage;
