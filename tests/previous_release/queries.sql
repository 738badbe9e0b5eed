-- The named statements of release 0008 (revision 0008_maps_sequences), as its
-- workers and command line sent them: tests/test_contract.py runs them against
-- the head schema, which must keep serving them for one release.

-- Every statement the Python side sends, by name. psycopg placeholders
-- (%(name)s); identifiers never come from Python strings.

-- name: claim
-- Lock a batch of ready queue rows with their current text (see vk.claim_v1).
SELECT collection_id, pk, model_id, attempts, body FROM vk.claim_v1(%(batch_size)s);

-- name: upsert_chunk
-- One chunk's vector (chunk 0 of an unchunked row) and the exact text it came
-- from, its offsets in the row's text, the hash of that whole text, tagged
-- with its model version.
INSERT INTO vk.embeddings AS e
    (collection_id, pk, model_id, chunk, start_char, end_char, embedding, body, text_sha256, truncated)
VALUES (%(collection_id)s, %(pk)s, %(model_id)s, %(chunk)s, %(start_char)s, %(end_char)s, %(embedding)s,
        %(body)s, %(text_sha256)s, %(truncated)s)
ON CONFLICT (collection_id, pk, model_id, chunk) DO UPDATE
SET embedding = EXCLUDED.embedding, body = EXCLUDED.body, start_char = EXCLUDED.start_char,
    end_char = EXCLUDED.end_char, text_sha256 = EXCLUDED.text_sha256, truncated = EXCLUDED.truncated,
    computed_at = now();

-- name: forget_chunks_from
-- A row's chunks past its new last one, removed in the transaction that wrote the new ones.
DELETE FROM vk.embeddings
WHERE collection_id = %(collection_id)s AND pk = %(pk)s AND model_id = %(model_id)s AND chunk >= %(chunks)s;

-- name: collection_chunking
SELECT chunking FROM vk.collections WHERE id = %(collection_id)s;

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

-- name: search_chunks
SELECT pk, chunk, start_char, end_char, body, distance
FROM vk.search_chunks(%(collection)s, %(query)s, %(k)s, %(model)s);

-- name: set_chunking
SELECT name, chunking FROM vk.set_chunking(%(collection)s, %(method)s, %(size)s, %(overlap)s);

-- name: status
SELECT collection, model, is_default, rows, embedded, chunks, chunking, pending, failed, dead, empty, stale,
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

-- name: store_artifact
INSERT INTO vk.model_artifacts (model_id, name, data, sha256, size_bytes)
VALUES (%(model_id)s, %(name)s, %(data)s, sha256(%(data)s), length(%(data)s))
ON CONFLICT (model_id, name) DO UPDATE
SET data = EXCLUDED.data, sha256 = EXCLUDED.sha256, size_bytes = EXCLUDED.size_bytes, created_at = now()
RETURNING encode(sha256, 'hex');

-- name: load_artifact
SELECT data, encode(sha256, 'hex') FROM vk.model_artifacts WHERE model_id = %(model_id)s AND name = %(name)s;

-- name: claim_job
SELECT * FROM vk.claim_job_v1(%(worker)s, %(lease)s, %(kinds)s);

-- name: heartbeat_job
SELECT vk.heartbeat_job_v1(%(id)s, %(worker)s, %(lease)s, %(progress)s);

-- name: finish_job
SELECT vk.finish_job_v1(%(id)s, %(worker)s, %(metrics)s, %(model_id)s, %(log)s);

-- name: fail_job
SELECT vk.fail_job_v1(%(id)s, %(worker)s, %(error)s, %(log)s);

-- name: record_snapshot
UPDATE vk.jobs SET snapshot = vk.snapshot_v1(%(collection_id)s) WHERE id = %(id)s RETURNING snapshot;

-- name: run_due_schedules
SELECT vk.run_due_schedules_v1();

-- name: listen_jobs
LISTEN vk_jobs;

-- name: enqueue_page
SELECT last_key, scanned, queued FROM vk.enqueue_page_v1(%(collection_id)s, %(model_id)s, %(after)s, %(page)s);

-- name: queued_for
SELECT count(*) FROM vk.queue WHERE collection_id = %(collection_id)s AND model_id = %(model_id)s;

-- name: dead_for
SELECT count(*), min(last_error) FROM vk.queue
WHERE collection_id = %(collection_id)s AND model_id = %(model_id)s AND dead;

-- name: collection_texts
SELECT pk, body FROM vk.collection_texts_v1(%(collection_id)s);

-- name: collection_pairs
-- (text, vector) pairs of a collection under a model: what a distilled model learns from.
SELECT pk, body, embedding FROM vk.embeddings
WHERE collection_id = %(collection_id)s AND model_id = %(model_id)s ORDER BY pk;

-- name: create_training_model
-- The version a train job produces, reserved at its start (status training).
INSERT INTO vk.models (name, version, kind, dim, distance, params, status, trained_by_job)
VALUES (%(name)s, coalesce((SELECT max(version) FROM vk.models WHERE name = %(name)s), 0) + 1,
        %(kind)s, %(dim)s, 'cosine', %(params)s, 'training', %(job_id)s)
RETURNING id;

-- name: set_job_model
UPDATE vk.jobs SET model_id = %(model_id)s WHERE id = %(id)s;

-- name: model_trained
UPDATE vk.models
SET dim = %(dim)s, params = %(params)s, metrics = %(metrics)s, fingerprint = %(fingerprint)s,
    status = 'ready', updated_at = now()
WHERE id = %(id)s;

-- name: model_failed
UPDATE vk.models SET status = 'failed', updated_at = now() WHERE id = %(id)s AND status = 'training';

-- name: submit_reembed
SELECT vk.submit_job_v1('reembed', %(params)s, %(collection_id)s, %(model_id)s);

-- name: embed_with
SELECT vk.embed_with_v1(c, m) FROM vk.collections c, vk.models m
WHERE c.id = %(collection_id)s AND m.id = %(model_id)s;

-- name: activate
SELECT vk.model_label(m) FROM vk.activate(%(collection)s, %(model)s, %(gates)s) m;

-- name: collection_name
SELECT name, default_model_id FROM vk.collections WHERE id = %(id)s;

-- name: list_jobs
SELECT j.id, j.kind, j.status, c.name AS collection, vk.model_label(m) AS model, j.attempts,
       j.progress, j.metrics, j.error, j.worker, j.created_at, j.started_at, j.finished_at
FROM vk.jobs j
LEFT JOIN vk.collections c ON c.id = j.collection_id
LEFT JOIN vk.models m ON m.id = j.model_id
ORDER BY j.id DESC LIMIT %(limit)s;

-- name: job
SELECT j.*, c.name AS collection, vk.model_label(m) AS model
FROM vk.jobs j
LEFT JOIN vk.collections c ON c.id = j.collection_id
LEFT JOIN vk.models m ON m.id = j.model_id
WHERE j.id = %(id)s;

-- name: train
SELECT vk.train(%(model)s, %(kind)s, %(params)s, %(collection)s);

-- name: schedule_train
SELECT vk.schedule_train(%(model)s, %(kind)s, %(every)s::interval, %(params)s, %(collection)s);

-- name: reembed
SELECT vk.reembed(%(collection)s, %(model)s);

-- name: retire
SELECT vk.retire(%(model)s, %(collection)s);

-- name: release_job
SELECT vk.release_job_v1(%(id)s, %(worker)s, %(progress)s);

-- name: adopt
SELECT name, model_id FROM vk.adopt(%(table)s::regclass, %(pk)s, %(vector)s, %(model)s, %(name)s);

-- name: set_encoder
-- The adopted vectors' encoder, named by the user and loaded here: its
-- fingerprint lets vk.compatible_models find versions in the same space.
UPDATE vk.models
SET fingerprint = %(fingerprint)s, params = params || jsonb_build_object('encoder', %(encoder)s::text),
    updated_at = now()
WHERE id = (vk.model(%(model)s)).id;

-- name: recover_adopted
SELECT vk.recover_adopted(%(adopted)s, %(method)s, %(reference)s, %(params)s);

-- name: adopted_id
SELECT id FROM vk.adopted WHERE name = %(name)s;

-- name: recover_nearest_page
SELECT last_key, recovered FROM vk.recover_nearest_page_v1(%(adopted_id)s, %(after)s, %(page)s,
                                                            %(reference_model_id)s, %(job_id)s);

-- name: recovered_summary
SELECT count(*), avg(similarity), count(*) FILTER (WHERE body IS NULL)
FROM vk.recovered WHERE adopted_id = %(adopted_id)s AND method = %(method)s;

-- name: adopted_page
SELECT pk, embedding FROM vk.adopted_page_v1(%(adopted_id)s, %(after)s, %(page)s);

-- name: put_recovered
SELECT vk.put_recovered_v1(%(adopted_id)s, %(pk)s, %(body)s, %(similarity)s, %(model_id)s,
                           %(reference_model_id)s, %(job_id)s, %(details)s);

-- name: evaluate_recovery
SELECT vk.evaluate_recovery(%(collection)s, %(model)s, %(inverter)s, %(params)s);

-- name: nearest_other
-- The nearest stored text to a vector that is not the row itself: recovery's baseline.
SELECT r.pk, r.body, r.similarity FROM vk.recover(%(vector)s, %(model)s, 2, %(collection)s) r
WHERE r.pk <> %(pk)s LIMIT 1;

-- name: row_vectors
-- One vector a row (the mean of its chunks' vectors), with the hash of its text, in key order.
SELECT pk, avg(embedding) AS embedding, min(text_sha256) AS text_sha256 FROM vk.embeddings
WHERE collection_id = %(collection_id)s AND model_id = %(model_id)s
  AND (%(pks)s::text[] IS NULL OR pk = ANY(%(pks)s::text[]))
GROUP BY pk ORDER BY pk;

-- name: maps_of
-- The maps drawn from a collection's vectors of a model version, still in use.
SELECT mp.model_id FROM vk.maps mp JOIN vk.models m ON m.id = mp.model_id
WHERE mp.collection_id = %(collection_id)s AND mp.source_model_id = %(model_id)s
  AND m.status IN ('ready', 'active');

-- name: add_map
INSERT INTO vk.maps (model_id, collection_id, source_model_id)
VALUES (%(model_id)s, %(collection_id)s, %(source_model_id)s)
ON CONFLICT (model_id) DO NOTHING;

-- name: upsert_coordinates
INSERT INTO vk.coordinates AS c (collection_id, pk, model_id, x, y, text_sha256)
VALUES (%(collection_id)s, %(pk)s, %(model_id)s, %(x)s, %(y)s, %(text_sha256)s)
ON CONFLICT (collection_id, pk, model_id) DO UPDATE
SET x = EXCLUDED.x, y = EXCLUDED.y, text_sha256 = EXCLUDED.text_sha256, computed_at = now();

-- name: map_coordinates
SELECT pk, x, y FROM vk.coordinates WHERE model_id = %(model_id)s ORDER BY pk;

-- name: map_gaps
SELECT cell_x, cell_y, x, y, neighbours FROM vk.map_gaps(%(model)s, %(cells)s, %(min_neighbours)s);

-- name: recover_nearest
SELECT collection, pk, body, similarity FROM vk.recover(%(query)s, %(model)s, %(k)s, %(collection)s);

-- name: inverters_for
-- vec2text inverters trained for an encoder version, newest first.
SELECT id FROM vk.models
WHERE kind = 'vec2text-inverter' AND status IN ('ready', 'active')
  AND (params ->> 'encoder_model_id')::bigint = %(model_id)s
ORDER BY id DESC;

-- name: sequence_windows
SELECT group_key, target_pk, context_vectors, target
FROM vk.sequence_windows_v1(%(collection_id)s, %(model_id)s, %(context)s);

-- name: group_tail
SELECT pk, v FROM vk.group_tail_v1(%(collection_id)s, %(model_id)s, %(group_key)s, %(n)s);

-- name: put_prediction
INSERT INTO vk.predictions (job_id, collection_id, model_id, group_key, context_pks, vector)
VALUES (%(job_id)s, %(collection_id)s, %(model_id)s, %(group_key)s, %(context_pks)s, %(vector)s)
ON CONFLICT (job_id) DO UPDATE SET vector = EXCLUDED.vector, context_pks = EXCLUDED.context_pks;

-- name: set_order
SELECT name FROM vk.set_order(%(collection)s, %(group)s, %(position)s);

-- name: predict_next
SELECT vk.predict_next(%(collection)s, %(group_key)s, %(model)s);

-- name: predicted
SELECT pk, body, similarity FROM vk.predicted(%(job_id)s, %(k)s);
