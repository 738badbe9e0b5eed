-- Undo revision 0007: one vector a row again (chunk 0 of a chunked row stays,
-- stale, and is queued for the whole text). The migration then re-applies
-- the idempotent files of revisions 0001-0006, which restores the functions
-- and the view as they were.
INSERT INTO vk.queue (collection_id, pk, model_id)
SELECT DISTINCT e.collection_id, e.pk, e.model_id FROM vk.embeddings e WHERE e.chunk > 0
ON CONFLICT DO NOTHING;
DELETE FROM vk.embeddings WHERE chunk > 0;
DROP VIEW vk.status;
DROP FUNCTION vk.collection_stats_v2(bigint, bigint);
DROP FUNCTION vk.search_chunks(text, vector, integer, text);
DROP FUNCTION vk.knn_rows_sql(vk.collections, vk.models);
DROP FUNCTION vk.chunks_for_rows(integer);
DROP FUNCTION vk.knn_chunks_sql(bigint, vk.models, text);
DROP FUNCTION vk.set_chunking(text, text, integer, integer);
ALTER TABLE vk.embeddings DROP CONSTRAINT embeddings_pkey;
ALTER TABLE vk.embeddings ADD PRIMARY KEY (collection_id, pk, model_id);
ALTER TABLE vk.embeddings DROP COLUMN chunk, DROP COLUMN start_char, DROP COLUMN end_char;
COMMENT ON TABLE vk.embeddings IS 'One vector per (collection, row, model version), with the exact text it was computed from and its sha256.';
COMMENT ON COLUMN vk.embeddings.text_sha256 IS NULL;
ALTER TABLE vk.collections DROP COLUMN chunking;
