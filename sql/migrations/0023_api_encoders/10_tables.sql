-- vectorkeep 0023: run once by revision 0023_api_encoders, before the current
-- definitions; undone by down.sql.

-- What encoders behind an API cost: requests, inputs, tokens, retries and the
-- seconds spent throttled, per model version and per job (job_id 0: the queue's
-- and text queries' work outside any job). Workers add to it in the transaction
-- that writes the vectors (vk.record_api_usage_v1). No key to vk.models: on
-- Citus this stays a plain table of the coordinator, written beside the
-- distributed queue in one transaction (90_citus.sql leaves it out).
CREATE TABLE vk.api_usage (
    model_id          bigint NOT NULL,
    job_id            bigint NOT NULL DEFAULT 0,
    requests          bigint NOT NULL DEFAULT 0,
    inputs            bigint NOT NULL DEFAULT 0,
    tokens            bigint NOT NULL DEFAULT 0,
    retries           bigint NOT NULL DEFAULT 0,
    throttled_seconds double precision NOT NULL DEFAULT 0,
    failures          bigint NOT NULL DEFAULT 0,
    first_at          timestamptz NOT NULL DEFAULT now(),
    last_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, job_id)
);
COMMENT ON TABLE vk.api_usage IS
    'Use of encoders behind an API (kinds openai, voyage, ollama) per model version and job (0: outside any job): requests answered, inputs embedded, tokens the provider counted, retries, seconds throttled (429 and pacing), requests that failed.';
