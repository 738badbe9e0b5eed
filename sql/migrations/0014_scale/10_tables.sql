-- vectorkeep 0014: scale. Run once by revision 0014_scale, before the current
-- definitions; undone by down.sql.

-- A version's vectors are indexed (and searched) in single or half precision.
-- The heap keeps every vector as `vector` (one untyped column for every
-- version); a halfvec version's HNSW index and its searches use halfvec.
ALTER TABLE vk.models ADD COLUMN storage text NOT NULL DEFAULT 'vector'
    CHECK (storage IN ('vector', 'halfvec'));
COMMENT ON COLUMN vk.models.storage IS
    'vector (4 bytes a dimension) or halfvec (2 bytes: half the index, same recall): the precision of the version''s HNSW index and searches. Set with vk.set_storage before the version has vectors, or the train parameter storage.';

-- Replaced by vk._opclass(text, text): the operator class depends on the storage too.
DROP FUNCTION vk._opclass(text);
