-- Out of the box, after head's definitions: the default encoder and the ready
-- collection vk.documents (the rows revision 0001 seeded). The fingerprint is
-- recorded by the first worker that loads the encoder.
INSERT INTO vk.models (name, version, kind, dim, distance, params)
VALUES ('minilm', 1, 'sentence-transformers', 384, 'cosine',
        '{"source": "sentence-transformers/all-MiniLM-L6-v2"}');

SELECT vk.attach('vk.documents', 'id', 'body', 'minilm@1', 'documents');

-- What every upgrade's 99_privileges.sql grants on each function of vk, the
-- INSERT trigger function vk.attach just wrote included (as a database that
-- replays the revisions has it).
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA vk TO vk_admin;
