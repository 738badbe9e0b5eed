-- vectorkeep 0017 undone (before 0016's definitions are restored).
DROP TABLE vk.captured;
