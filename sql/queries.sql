-- Every statement the Python side sends, by name. psycopg placeholders
-- (%(name)s); identifiers never come from Python strings.

-- name: claim
-- Lock a batch of ready queue rows with their current text (see vk.claim_v1).
SELECT collection_id, pk, model_id, attempts, body FROM vk.claim_v1(%(batch_size)s);

-- name: upsert_embedding
-- The vector and the exact text it came from, tagged with its model version.
INSERT INTO vk.embeddings AS e (collection_id, pk, model_id, embedding, body, text_sha256)
VALUES (%(collection_id)s, %(pk)s, %(model_id)s, %(embedding)s, %(body)s,
        sha256(convert_to(%(body)s, 'UTF8')))
ON CONFLICT (collection_id, pk, model_id) DO UPDATE
SET embedding = EXCLUDED.embedding, body = EXCLUDED.body,
    text_sha256 = EXCLUDED.text_sha256, computed_at = now();

-- name: forget_embedding
-- A row whose text became NULL or blank keeps no vector of its old text.
DELETE FROM vk.embeddings
WHERE collection_id = %(collection_id)s AND pk = %(pk)s AND model_id = %(model_id)s;

-- name: finish
DELETE FROM vk.queue
WHERE collection_id = %(collection_id)s AND pk = %(pk)s AND model_id = %(model_id)s;

-- name: fail
-- Retry later with exponential backoff; after max_attempts the row is dead
-- and keeps its error for vk.status and the operator.
UPDATE vk.queue
SET attempts = attempts + 1,
    last_error = left(%(error)s, 4000),
    dead = attempts + 1 >= %(max_attempts)s,
    run_after = now() + least(600, %(backoff)s * 2 ^ attempts) * interval '1 second'
WHERE collection_id = %(collection_id)s AND pk = %(pk)s AND model_id = %(model_id)s;

-- name: model_by_id
SELECT id, name, version, kind, dim, distance, params, fingerprint, status
FROM vk.models WHERE id = %(id)s;

-- name: model_by_spec
SELECT id, name, version, kind, dim, distance, params, fingerprint, status
FROM vk.model(%(spec)s);

-- name: collection_model
-- The model a collection is searched with (its default when spec is NULL).
SELECT id, name, version, kind, dim, distance, params, fingerprint, status
FROM vk.collection_model(vk.collection(%(collection)s), %(spec)s);

-- name: record_fingerprint
-- Trust on first use: the first worker to load an encoder records its probe vector.
UPDATE vk.models SET fingerprint = %(fingerprint)s, updated_at = now()
WHERE id = %(id)s AND fingerprint IS NULL;

-- name: probe_text
SELECT vk.probe_text();

-- name: register_model
INSERT INTO vk.models (name, version, kind, dim, distance, params, fingerprint)
VALUES (%(name)s,
        coalesce((SELECT max(version) FROM vk.models WHERE name = %(name)s), 0) + 1,
        %(kind)s, %(dim)s, %(distance)s, %(params)s, %(fingerprint)s)
RETURNING id, name, version, kind, dim, distance, params, fingerprint, status;

-- name: list_models
SELECT vk.model_label(m) AS model, m.kind, m.dim, m.distance, m.status,
       m.fingerprint IS NOT NULL AS fingerprinted, m.params, m.created_at
FROM vk.models m ORDER BY m.name, m.version;

-- name: attach
SELECT name FROM vk.attach(%(table)s::regclass, %(pk)s, %(text)s, %(model)s, %(name)s);

-- name: search
SELECT pk, body, distance FROM vk.search(%(collection)s, %(query)s, %(k)s, %(model)s);

-- name: similar
SELECT pk, body, distance FROM vk.similar(%(collection)s, %(pk)s, %(k)s, %(model)s);

-- name: status
SELECT collection, model, is_default, rows, embedded, pending, failed, dead, empty, stale,
       last_embedded_at
FROM vk.status ORDER BY collection, model;

-- name: pending
-- Queue rows still to do (not dead), for progress bars.
SELECT count(*) FROM vk.queue WHERE NOT dead;

-- name: corpus_loaded
SELECT EXISTS (SELECT 1 FROM vk.documents WHERE metadata ->> 'source' = %(source)s);

-- name: insert_document
INSERT INTO vk.documents (body, metadata) VALUES (%(body)s, %(metadata)s);

-- name: documents_sample
SELECT id::text FROM vk.documents WHERE metadata ->> 'source' = %(source)s ORDER BY id LIMIT 1;

-- name: listen
-- The channel the queue triggers notify (vk.enqueued_v1).
LISTEN vk_queue;
