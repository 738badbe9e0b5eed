-- Undo revision 0002 (the revision then re-applies 0001's collections file,
-- whose vk.add_model this revision replaced).
DROP FUNCTION IF EXISTS vk.collection_texts_v1(bigint);
DROP FUNCTION IF EXISTS vk.snapshot_v1(bigint);
DROP FUNCTION IF EXISTS vk.enqueue_page_v1(bigint, bigint, text, integer);
DROP FUNCTION IF EXISTS vk.retire(text, text);
DROP FUNCTION IF EXISTS vk.activate(text, text, jsonb);
DROP FUNCTION IF EXISTS vk.coverage_v1(vk.collections, vk.models);
DROP FUNCTION IF EXISTS vk.run_due_schedules_v1();
DROP FUNCTION IF EXISTS vk.schedule_train(text, text, interval, jsonb, text);
DROP FUNCTION IF EXISTS vk.release_job_v1(bigint, text, jsonb);
DROP FUNCTION IF EXISTS vk.fail_job_v1(bigint, text, text, text);
DROP FUNCTION IF EXISTS vk.finish_job_v1(bigint, text, jsonb, bigint, text);
DROP FUNCTION IF EXISTS vk.heartbeat_job_v1(bigint, text, double precision, jsonb);
DROP FUNCTION IF EXISTS vk.claim_job_v1(text, double precision, text[]);
DROP FUNCTION IF EXISTS vk.reembed(text, text);
DROP FUNCTION IF EXISTS vk.add_model(text, text, boolean);
DROP FUNCTION IF EXISTS vk.embed_with_v1(vk.collections, vk.models);
DROP FUNCTION IF EXISTS vk.train(text, text, jsonb, text);
DROP FUNCTION IF EXISTS vk.check_train_args(text, text);
DROP FUNCTION IF EXISTS vk.trainable_kinds();
DROP FUNCTION IF EXISTS vk.submit_job_v1(text, jsonb, bigint, bigint, bigint);

ALTER TABLE vk.jobs DROP CONSTRAINT IF EXISTS jobs_schedule_id_fkey;
DROP TABLE IF EXISTS vk.schedules;
ALTER TABLE vk.jobs
    DROP COLUMN IF EXISTS schedule_id,
    DROP COLUMN IF EXISTS max_attempts,
    DROP COLUMN IF EXISTS log_tail,
    DROP COLUMN IF EXISTS snapshot;
DROP TABLE IF EXISTS vk.model_artifacts;
