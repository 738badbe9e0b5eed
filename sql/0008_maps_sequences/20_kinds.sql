-- Model kinds trained by jobs: encoders, inverters, maps and next-vector models.
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.

CREATE OR REPLACE FUNCTION vk.trainable_kinds() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['doc2vec', 'tfidf', 'tfidf-mlp', 'vec2text-inverter', 'umap', 'lvm-lstm', 'lvm-gru', 'lvm-transformer'];

-- Kinds that do not turn text into vectors: never a collection's encoder.
CREATE OR REPLACE FUNCTION vk.is_encoder_kind(kind text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN kind NOT IN ('vec2text-inverter', 'umap', 'lvm-lstm', 'lvm-gru', 'lvm-transformer');
