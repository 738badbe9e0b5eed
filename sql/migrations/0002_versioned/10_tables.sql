-- vectorkeep 0002: versioned models trained as jobs. Run once by revision
-- 0002_versioned; undone by down.sql.

-- Artifacts of models trained here, in the database so that any worker on any
-- machine loads the same bytes. sha256 is checked on every load, against this
-- column and against params.artifact_sha256 recorded on the model at training.
CREATE TABLE vk.model_artifacts (
    model_id   bigint NOT NULL REFERENCES vk.models (id) ON DELETE CASCADE,
    name       text NOT NULL,
    data       bytea NOT NULL,
    sha256     bytea NOT NULL,
    size_bytes bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, name)
);
COMMENT ON TABLE vk.model_artifacts IS 'Trained model artifacts (bytes + sha256), loadable by any worker.';

ALTER TABLE vk.jobs
    ADD COLUMN snapshot     jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN log_tail     text,
    ADD COLUMN max_attempts integer NOT NULL DEFAULT 3,
    ADD COLUMN schedule_id  bigint;
COMMENT ON COLUMN vk.jobs.snapshot IS 'The data a job read: collection, row count, max key, when.';

-- Periodic jobs (e.g. a daily retrain): a worker turns each due row into a job.
CREATE TABLE vk.schedules (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL,
    params        jsonb NOT NULL DEFAULT '{}',
    collection_id bigint REFERENCES vk.collections (id) ON DELETE CASCADE,
    every         interval NOT NULL CHECK (every >= interval '1 minute'),
    next_run_at   timestamptz NOT NULL DEFAULT now(),
    last_job_id   bigint REFERENCES vk.jobs (id) ON DELETE SET NULL,
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE vk.schedules IS 'Jobs created periodically (every interval) by the workers, like a nightly retrain.';

ALTER TABLE vk.jobs
    ADD CONSTRAINT jobs_schedule_id_fkey FOREIGN KEY (schedule_id) REFERENCES vk.schedules (id) ON DELETE SET NULL;
