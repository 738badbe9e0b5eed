-- vectorkeep 0007: long text cut into chunks, each with its own vector. Run
-- once by revision 0007_chunks; undone by down.sql.

-- How a collection's rows are cut before embedding; every model version of
-- the collection uses it (sizes are counted with each version's tokenizer).
ALTER TABLE vk.collections
    ADD COLUMN chunking jsonb NOT NULL DEFAULT '{"method": "none"}'
        CHECK (chunking->>'method' IN ('none', 'tokens', 'sentences', 'markdown'));
COMMENT ON COLUMN vk.collections.chunking IS
    'How rows are cut before embedding: {"method": none|tokens|sentences|markdown, "size": tokens, "overlap": tokens}; set with vk.set_chunking.';

-- A row's vectors are its chunks 0..n-1 (one chunk, 0, when not chunked).
-- body is the chunk's own text, text[start_char:end_char] of the row's text;
-- text_sha256 is the hash of the whole row text it was cut from, so a row's
-- vectors are current exactly when every chunk's hash is the text's.
ALTER TABLE vk.embeddings
    ADD COLUMN chunk integer NOT NULL DEFAULT 0 CHECK (chunk >= 0),
    ADD COLUMN start_char integer NOT NULL DEFAULT 0 CHECK (start_char >= 0),
    ADD COLUMN end_char integer CHECK (end_char >= start_char);
COMMENT ON COLUMN vk.embeddings.chunk IS 'Position of this chunk in the row (0 for an unchunked row).';
COMMENT ON COLUMN vk.embeddings.start_char IS 'Offset (characters, from 0) in the row''s text where body starts.';
COMMENT ON COLUMN vk.embeddings.end_char IS 'Offset where body ends (exclusive); NULL on vectors written before revision 0007: the end of the text.';
COMMENT ON COLUMN vk.embeddings.text_sha256 IS 'sha256 of the row text the vector (or its chunk) was computed from.';
ALTER TABLE vk.embeddings DROP CONSTRAINT embeddings_pkey;
ALTER TABLE vk.embeddings ADD PRIMARY KEY (collection_id, pk, model_id, chunk);
COMMENT ON TABLE vk.embeddings IS
    'One vector per (collection, row, model version, chunk), with the exact text it was computed from, its offsets in the row''s text and the text''s sha256.';
