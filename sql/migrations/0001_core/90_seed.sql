-- Out of the box: the default encoder and the ready collection vk.documents.
-- The fingerprint is recorded by the first worker that loads the encoder.
INSERT INTO vk.models (name, version, kind, dim, distance, params)
VALUES ('minilm', 1, 'sentence-transformers', 384, 'cosine',
        '{"source": "sentence-transformers/all-MiniLM-L6-v2"}');

SELECT vk.attach('vk.documents', 'id', 'body', 'minilm@1', 'documents');

CREATE TRIGGER documents_touch BEFORE UPDATE ON vk.documents
    FOR EACH ROW EXECUTE FUNCTION vk.touch_updated_at();
