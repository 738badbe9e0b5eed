-- vectorkeep 0001: the tables of schema vk.
-- Run once by alembic revision 0001; undone by down.sql.

CREATE SCHEMA vk;
COMMENT ON SCHEMA vk IS 'vectorkeep: text beside vectors, model versions, embedding queue and jobs';

-- One row per model version. A vector is only ever compared with vectors of
-- the same row here.
CREATE TABLE vk.models (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]*$' AND name !~ '@'),
    version         integer NOT NULL CHECK (version > 0),
    kind            text NOT NULL,
    dim             integer NOT NULL CHECK (dim BETWEEN 1 AND 16000),
    distance        text NOT NULL DEFAULT 'cosine' CHECK (distance IN ('cosine', 'l2', 'ip')),
    params          jsonb NOT NULL DEFAULT '{}',
    -- The vector of vk.probe_text() under this encoder: a different encoder
    -- registered under the same name gives another vector and is refused.
    fingerprint     vector,
    status          text NOT NULL DEFAULT 'ready'
                    CHECK (status IN ('training', 'ready', 'active', 'retired', 'failed')),
    trained_by_job  bigint,
    metrics         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version),
    CHECK (fingerprint IS NULL OR vector_dims(fingerprint) = dim)
);
COMMENT ON TABLE vk.models IS 'One row per model version (name@version): kind, dimension, distance, fingerprint, status.';

-- A watched source table. The text of a row is text_expression evaluated over it.
CREATE TABLE vk.collections (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    source           regclass NOT NULL UNIQUE,
    pk_column        name NOT NULL,
    pk_type          text NOT NULL,
    text_expression  text NOT NULL,
    default_model_id bigint REFERENCES vk.models (id),
    created_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE vk.collections IS 'Watched source tables: key column, SQL expression yielding the text, default search model.';

-- The model versions kept embedded for a collection (each has its own HNSW index).
CREATE TABLE vk.collection_models (
    collection_id bigint NOT NULL REFERENCES vk.collections (id) ON DELETE CASCADE,
    model_id      bigint NOT NULL REFERENCES vk.models (id),
    index_name    name NOT NULL,
    added_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, model_id)
);

-- The ready-made collection for applications that have no table yet.
CREATE TABLE vk.documents (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body       text,
    metadata   jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE vk.documents IS 'Ready collection "documents": INSERT text into body, a worker embeds it.';

-- body is the exact text the vector was computed from, kept beside it so that
-- no vector is ever orphaned from its text (even after the source row changes).
CREATE TABLE vk.embeddings (
    collection_id bigint NOT NULL REFERENCES vk.collections (id) ON DELETE CASCADE,
    pk            text NOT NULL,
    model_id      bigint NOT NULL REFERENCES vk.models (id),
    embedding     vector NOT NULL,
    body          text NOT NULL,
    text_sha256   bytea NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, pk, model_id)
);
COMMENT ON TABLE vk.embeddings IS 'One vector per (collection, row, model version), with the exact text it was computed from and its sha256.';

-- Per-row embedding work. Deduplicated per (collection, row, model); a worker
-- locks rows with FOR UPDATE SKIP LOCKED and deletes them in the transaction
-- that writes the vectors, so a dead worker leaves nothing claimed.
CREATE TABLE vk.queue (
    collection_id bigint NOT NULL REFERENCES vk.collections (id) ON DELETE CASCADE,
    pk            text NOT NULL,
    model_id      bigint NOT NULL REFERENCES vk.models (id) ON DELETE CASCADE,
    enqueued_at   timestamptz NOT NULL DEFAULT now(),
    run_after     timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    dead          boolean NOT NULL DEFAULT false,
    -- No surrogate id: a sequence every enqueue touches would serialise
    -- writers and block distributing the queue by (collection_id, pk).
    PRIMARY KEY (collection_id, pk, model_id)
);
CREATE INDEX queue_ready_idx ON vk.queue (run_after) WHERE NOT dead;
COMMENT ON TABLE vk.queue IS 'Embedding work queued by triggers; dead rows keep their last error and are never dropped silently.';

-- Long jobs (train, reembed, recover, evaluate): the run history.
CREATE TABLE vk.jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL,
    params        jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    collection_id bigint REFERENCES vk.collections (id) ON DELETE SET NULL,
    model_id      bigint REFERENCES vk.models (id),
    progress      jsonb NOT NULL DEFAULT '{}',
    metrics       jsonb NOT NULL DEFAULT '{}',
    error         text,
    worker        text,
    lease_until   timestamptz,
    heartbeat_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz
);
CREATE INDEX jobs_queued_idx ON vk.jobs (id) WHERE status IN ('queued', 'running');
COMMENT ON TABLE vk.jobs IS 'Versioned long jobs and their history: params, status, progress, lease, metrics, error.';

ALTER TABLE vk.models
    ADD CONSTRAINT models_trained_by_job_fkey FOREIGN KEY (trained_by_job) REFERENCES vk.jobs (id);
