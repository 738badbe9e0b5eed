-- vectorkeep 0003: recovering text from vectors. Run once by revision
-- 0003_recovery; undone by down.sql.

-- A legacy table of vectors without text, adopted as an external model version.
CREATE TABLE vk.adopted (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    source        regclass NOT NULL UNIQUE,
    pk_column     name NOT NULL,
    pk_type       text NOT NULL,
    vector_column name NOT NULL,
    model_id      bigint NOT NULL REFERENCES vk.models (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE vk.adopted IS 'Legacy vector-only tables: their vectors are the external model version model_id.';

-- Text recovered for a vector: kept apart from every original text, with
-- where it came from, so it is never mistaken for what was written.
CREATE TABLE vk.recovered (
    adopted_id         bigint NOT NULL REFERENCES vk.adopted (id) ON DELETE CASCADE,
    pk                 text NOT NULL,
    method             text NOT NULL CHECK (method IN ('nearest', 'vec2text')),
    body               text,
    -- nearest: similarity of the stored text's vector to the target;
    -- vec2text: cosine of the recovered text, re-embedded, to the target.
    similarity         double precision,
    source_collection  text,
    source_pk          text,
    model_id           bigint NOT NULL REFERENCES vk.models (id),
    reference_model_id bigint REFERENCES vk.models (id),
    job_id             bigint REFERENCES vk.jobs (id) ON DELETE SET NULL,
    details            jsonb NOT NULL DEFAULT '{}',
    recovered_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (adopted_id, pk, method)
);
COMMENT ON TABLE vk.recovered IS
    'Text recovered from adopted vectors, with provenance (method, source row, similarity, models, job). Never original text.';
