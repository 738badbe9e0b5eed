-- vectorkeep 0004: what the encoder left out. Run once by revision
-- 0004_reliability; undone by down.sql.

-- True when the text was longer than the encoder's window and its end never
-- reached the vector (all-MiniLM-L6-v2 stops after 256 word pieces).
ALTER TABLE vk.embeddings ADD COLUMN truncated boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN vk.embeddings.truncated IS 'The encoder cut the text to its window: the vector does not cover its end.';
