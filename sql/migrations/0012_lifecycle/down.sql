-- Undo revision 0012, before the definitions of 0011 are restored.
DROP TABLE vk.model_kinds CASCADE;
