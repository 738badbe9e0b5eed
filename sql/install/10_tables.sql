-- A fresh install's tables: head's schemas, tables, constraints, indexes, row
-- security and comments, as the revisions up to 0024_queue_upsert left them (sql/migrations/).
-- Generated from sql/releases/0024_queue_upsert.json by `vectorkeep schema record`:
-- do not edit (tests/test_install.py fails when it is stale). Grants are
-- sql/definitions/99_privileges.sql's; policies and triggers are definitions too.

CREATE SCHEMA vk;
COMMENT ON SCHEMA vk IS 'vectorkeep: text beside vectors, model versions, embedding queue and jobs';
CREATE SCHEMA vk_expr;
COMMENT ON SCHEMA vk_expr IS 'vectorkeep: each collection''s text (text_c<id>) and order (order_c<id>) expressions, as functions owned by the role that registered them.';

CREATE TABLE vk.adopted (
    id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL,
    source regclass NOT NULL,
    pk_column name NOT NULL,
    pk_type text NOT NULL,
    vector_column name NOT NULL,
    model_id bigint NOT NULL,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT adopted_name_key UNIQUE (name),
    CONSTRAINT adopted_pkey PRIMARY KEY (id),
    CONSTRAINT adopted_source_key UNIQUE (source)
);
COMMENT ON TABLE vk.adopted IS 'Legacy vector-only tables: their vectors are the external model version model_id.';

CREATE TABLE vk.api_usage (
    model_id bigint NOT NULL,
    job_id bigint NOT NULL DEFAULT 0,
    requests bigint NOT NULL DEFAULT 0,
    inputs bigint NOT NULL DEFAULT 0,
    tokens bigint NOT NULL DEFAULT 0,
    retries bigint NOT NULL DEFAULT 0,
    throttled_seconds double precision NOT NULL DEFAULT 0,
    failures bigint NOT NULL DEFAULT 0,
    first_at timestamp with time zone NOT NULL DEFAULT now(),
    last_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT api_usage_pkey PRIMARY KEY (model_id, job_id)
);
ALTER TABLE vk.api_usage ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE vk.api_usage IS 'Use of encoders behind an API (kinds openai, voyage, ollama) per model version and job (0: outside any job): requests answered, inputs embedded, tokens the provider counted, retries, seconds throttled (429 and pacing), requests that failed.';

CREATE TABLE vk.captured (
    id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    collection_id bigint NOT NULL,
    pk text NOT NULL,
    op "char" NOT NULL,
    captured_at timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT captured_op_check CHECK ((op = ANY (ARRAY['q'::"char", 'd'::"char", 't'::"char"]))),
    CONSTRAINT captured_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE vk.captured IS 'On Citus, per node: row keys the triggers of a distributed table captured (q: queue, d: forget, t: the table was truncated), until vk.move_captured_v1 moves them to vk.queue.';

CREATE TABLE vk.collection_models (
    collection_id bigint NOT NULL,
    model_id bigint NOT NULL,
    index_name name NOT NULL,
    added_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT collection_models_pkey PRIMARY KEY (collection_id, model_id)
);

CREATE TABLE vk.collections (
    id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL,
    source regclass NOT NULL,
    pk_column name NOT NULL,
    pk_type text NOT NULL,
    text_expression text NOT NULL,
    default_model_id bigint,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    chunking jsonb NOT NULL DEFAULT '{"method": "none"}'::jsonb,
    group_expression text,
    position_expression text,
    registered_by name NOT NULL,
    order_registered_by name,
    copies_row_security boolean NOT NULL DEFAULT false,
    metadata_expression text,
    metadata_registered_by name,
    text_search regconfig NOT NULL DEFAULT 'english'::regconfig,
    CONSTRAINT collections_chunking_check CHECK (((chunking ->> 'method'::text) = ANY (ARRAY['none'::text, 'tokens'::text, 'sentences'::text, 'markdown'::text]))),
    CONSTRAINT collections_name_key UNIQUE (name),
    CONSTRAINT collections_pkey PRIMARY KEY (id),
    CONSTRAINT collections_source_key UNIQUE (source)
);
COMMENT ON TABLE vk.collections IS 'Watched source tables: key column, SQL expression yielding the text, default search model.';
COMMENT ON COLUMN vk.collections.chunking IS 'How rows are cut before embedding: {"method": none|tokens|sentences|markdown, "size": tokens, "overlap": tokens}; set with vk.set_chunking.';
COMMENT ON COLUMN vk.collections.copies_row_security IS 'The table has row-level security and its operator chose to copy its text anyway (vk.attach(..., row_security => ''copy'')): vk''s copies follow table privileges, not row policies.';
COMMENT ON COLUMN vk.collections.group_expression IS 'Rows of one sequence (e.g. a document''s chunks) share this value; see vk.set_order.';
COMMENT ON COLUMN vk.collections.metadata_expression IS 'SQL expression over the source row returning a jsonb object, stored beside the row''s vectors (vk.embeddings.metadata) and used by filter => in searches.';
COMMENT ON COLUMN vk.collections.metadata_registered_by IS 'The role that set the metadata expression: it runs with its rights (vk_expr.meta_c<id>).';
COMMENT ON COLUMN vk.collections.order_registered_by IS 'The role that set the order expressions: they run with its rights (vk_expr.order_c<id>).';
COMMENT ON COLUMN vk.collections.position_expression IS 'Order of a row within its group.';
COMMENT ON COLUMN vk.collections.registered_by IS 'The role that attached the table: the text expression runs with its rights (vk_expr.text_c<id>).';
COMMENT ON COLUMN vk.collections.text_search IS 'The text-search configuration of keyword ranking (vk.hybrid_search) over the stored text; one GIN index per (collection, model).';

CREATE TABLE vk.coordinates (
    collection_id bigint NOT NULL,
    pk text NOT NULL,
    model_id bigint NOT NULL,
    x double precision NOT NULL,
    y double precision NOT NULL,
    text_sha256 bytea NOT NULL,
    computed_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT coordinates_pkey PRIMARY KEY (collection_id, pk, model_id)
);
ALTER TABLE vk.coordinates ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE vk.coordinates IS 'The 2D position of each row on each map, from its vector (the mean of its chunks'' vectors when chunked).';

CREATE TABLE vk.deployments (
    collection_id bigint NOT NULL,
    role text NOT NULL,
    model_id bigint NOT NULL,
    activated_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT deployments_pkey PRIMARY KEY (collection_id, role),
    CONSTRAINT deployments_role_check CHECK ((role = ANY (ARRAY['map'::text, 'next-vector'::text])))
);
COMMENT ON TABLE vk.deployments IS 'The active map and next-vector model of each collection, set by vk.activate once their gates pass.';

CREATE TABLE vk.documents (
    id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    body text,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    updated_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT documents_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE vk.documents IS 'Ready collection "documents": INSERT text into body, a worker embeds it.';

CREATE TABLE vk.embed_cache (
    model_id bigint NOT NULL,
    text_sha256 bytea NOT NULL,
    embedding vector NOT NULL,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    asked_by name NOT NULL,
    CONSTRAINT embed_cache_pkey PRIMARY KEY (model_id, text_sha256, asked_by)
);
CREATE INDEX embed_cache_created_at ON vk.embed_cache USING btree (created_at);
COMMENT ON TABLE vk.embed_cache IS 'Vectors of recent text queries by model version, login role and text hash (no text): kept one hour, at most 10,000; a role is answered only from its own.';

CREATE TABLE vk.embed_requests (
    id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    model_id bigint NOT NULL,
    text_sha256 bytea NOT NULL,
    input text NOT NULL,
    requested_at timestamp with time zone NOT NULL DEFAULT now(),
    error text,
    asked_by name NOT NULL,
    caller_pid integer NOT NULL,
    link_pid integer NOT NULL,
    claimed_by integer,
    answer vector,
    CONSTRAINT embed_requests_pkey PRIMARY KEY (id)
);
CREATE INDEX embed_requests_asked_by ON vk.embed_requests USING btree (asked_by) WHERE ((answer IS NULL) AND (error IS NULL));
COMMENT ON TABLE vk.embed_requests IS 'Text queries waiting for a worker (vk.embed): asked by a login role from a backend and its loopback connection, claimed by a lane, answered on the row, deleted by the caller once read, or by the lane when either backend is gone.';

CREATE TABLE vk.embeddings (
    collection_id bigint NOT NULL,
    pk text NOT NULL,
    model_id bigint NOT NULL,
    embedding vector NOT NULL,
    body text NOT NULL,
    text_sha256 bytea NOT NULL,
    computed_at timestamp with time zone NOT NULL DEFAULT now(),
    truncated boolean NOT NULL DEFAULT false,
    chunk integer NOT NULL DEFAULT 0,
    start_char integer NOT NULL DEFAULT 0,
    end_char integer,
    metadata jsonb,
    CONSTRAINT embeddings_check CHECK ((end_char >= start_char)),
    CONSTRAINT embeddings_chunk_check CHECK ((chunk >= 0)),
    CONSTRAINT embeddings_pkey PRIMARY KEY (collection_id, pk, model_id, chunk),
    CONSTRAINT embeddings_start_char_check CHECK ((start_char >= 0))
);
CREATE INDEX embeddings_metadata ON vk.embeddings USING gin (metadata jsonb_path_ops) WITH (fastupdate=off) WHERE (metadata IS NOT NULL);
ALTER TABLE vk.embeddings ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE vk.embeddings IS 'One vector per (collection, row, model version, chunk), with the exact text it was computed from, its offsets in the row''s text and the text''s sha256.';
COMMENT ON COLUMN vk.embeddings.chunk IS 'Position of this chunk in the row (0 for an unchunked row).';
COMMENT ON COLUMN vk.embeddings.end_char IS 'Offset where body ends (exclusive); NULL on vectors written before revision 0007: the end of the text.';
COMMENT ON COLUMN vk.embeddings.metadata IS 'The row''s metadata (vk.collections.metadata_expression), kept current without re-embedding.';
COMMENT ON COLUMN vk.embeddings.start_char IS 'Offset (characters, from 0) in the row''s text where body starts.';
COMMENT ON COLUMN vk.embeddings.text_sha256 IS 'sha256 of the row text the vector (or its chunk) was computed from.';
COMMENT ON COLUMN vk.embeddings.truncated IS 'The encoder cut the text to its window: the vector does not cover its end.';

CREATE TABLE vk.hybrid_settings (
    collection_id bigint NOT NULL,
    version integer NOT NULL,
    fusion text NOT NULL,
    keyword_weight double precision NOT NULL,
    vector_weight double precision NOT NULL,
    ndcg_at_10 double precision,
    queries integer,
    tried jsonb,
    chosen_by name NOT NULL DEFAULT CURRENT_USER,
    chosen_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT hybrid_settings_check CHECK (((keyword_weight > (0)::double precision) OR (vector_weight > (0)::double precision))),
    CONSTRAINT hybrid_settings_fusion_check CHECK ((fusion = ANY (ARRAY['convex'::text, 'rrf'::text]))),
    CONSTRAINT hybrid_settings_keyword_weight_check CHECK (((keyword_weight >= (0)::double precision) AND (keyword_weight < 'Infinity'::double precision))),
    CONSTRAINT hybrid_settings_pkey PRIMARY KEY (collection_id, version),
    CONSTRAINT hybrid_settings_vector_weight_check CHECK (((vector_weight >= (0)::double precision) AND (vector_weight < 'Infinity'::double precision))),
    CONSTRAINT hybrid_settings_version_check CHECK ((version > 0))
);
COMMENT ON TABLE vk.hybrid_settings IS 'vk.hybrid_search''s defaults per collection, versioned (the highest version applies): fusion (convex or rrf) and weights; ndcg_at_10, queries and tried (every setting tried and its nDCG@10) when vk.tune_hybrid chose them.';

CREATE TABLE vk.jobs (
    id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    kind text NOT NULL,
    params jsonb NOT NULL DEFAULT '{}'::jsonb,
    status text NOT NULL DEFAULT 'queued'::text,
    collection_id bigint,
    model_id bigint,
    progress jsonb NOT NULL DEFAULT '{}'::jsonb,
    metrics jsonb NOT NULL DEFAULT '{}'::jsonb,
    error text,
    worker text,
    lease_until timestamp with time zone,
    heartbeat_at timestamp with time zone,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    snapshot jsonb NOT NULL DEFAULT '{}'::jsonb,
    log_tail text,
    max_attempts integer NOT NULL DEFAULT 3,
    schedule_id bigint,
    CONSTRAINT jobs_pkey PRIMARY KEY (id),
    CONSTRAINT jobs_status_check CHECK ((status = ANY (ARRAY['queued'::text, 'running'::text, 'succeeded'::text, 'failed'::text, 'cancelled'::text])))
);
CREATE INDEX jobs_queued_idx ON vk.jobs USING btree (id) WHERE (status = ANY (ARRAY['queued'::text, 'running'::text]));
ALTER TABLE vk.jobs ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE vk.jobs IS 'Versioned long jobs and their history: params, status, progress, lease, metrics, error.';
COMMENT ON COLUMN vk.jobs.snapshot IS 'The data a job read: collection, row count, max key, when.';

CREATE TABLE vk.keyword_norms (
    collection_id bigint NOT NULL,
    model_id bigint NOT NULL,
    norm double precision NOT NULL,
    CONSTRAINT keyword_norms_norm_check CHECK ((norm > (0)::double precision)),
    CONSTRAINT keyword_norms_pkey PRIMARY KEY (collection_id, model_id)
);
COMMENT ON TABLE vk.keyword_norms IS 'BM25: per (collection, model), the mean chunk length in words that vk.keyword_postings.impact was computed with.';

CREATE TABLE vk.keyword_postings (
    collection_id bigint NOT NULL,
    model_id bigint NOT NULL,
    pk text NOT NULL,
    chunk integer NOT NULL,
    term text NOT NULL,
    tf integer NOT NULL,
    length integer NOT NULL,
    impact real NOT NULL,
    CONSTRAINT keyword_postings_check CHECK ((length >= tf)),
    CONSTRAINT keyword_postings_pkey PRIMARY KEY (collection_id, model_id, pk, chunk, term) INCLUDE (tf, length),
    CONSTRAINT keyword_postings_tf_check CHECK ((tf > 0))
);
CREATE INDEX keyword_postings_impact_idx ON vk.keyword_postings USING btree (collection_id, model_id, term, impact DESC) INCLUDE (pk, chunk, tf, length);
ALTER TABLE vk.keyword_postings ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE vk.keyword_postings IS 'BM25: each word (lexeme) of each chunk of vk.embeddings, with its count there (tf), the chunk''s length in words and its weight under vk.keyword_norms'' norm (impact: the order a search reads).';

CREATE TABLE vk.keyword_stats (
    collection_id bigint NOT NULL,
    model_id bigint NOT NULL,
    term text NOT NULL,
    chunks bigint NOT NULL,
    words bigint NOT NULL
);
CREATE INDEX keyword_stats_term_idx ON vk.keyword_stats USING btree (collection_id, model_id, term) INCLUDE (chunks, words);
ALTER TABLE vk.keyword_stats ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE vk.keyword_stats IS 'BM25 statistics, summed per (collection_id, model_id, term): chunks holding the word and its occurrences; term '''' counts every chunk and every word. Rows are deltas (one per write) until vk.compact_keyword_stats_v1 folds them.';

CREATE TABLE vk.maps (
    model_id bigint NOT NULL,
    collection_id bigint NOT NULL,
    source_model_id bigint NOT NULL,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT maps_pkey PRIMARY KEY (model_id)
);
COMMENT ON TABLE vk.maps IS 'Maps (umap versions) and the collection and source model whose vectors they place in 2D; workers keep their coordinates current.';

CREATE TABLE vk.model_artifacts (
    model_id bigint NOT NULL,
    name text NOT NULL,
    data bytea NOT NULL,
    sha256 bytea NOT NULL,
    size_bytes bigint NOT NULL,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT model_artifacts_pkey PRIMARY KEY (model_id, name)
);
COMMENT ON TABLE vk.model_artifacts IS 'Trained model artifacts (bytes + sha256), loadable by any worker.';

CREATE TABLE vk.model_kinds (
    kind text NOT NULL,
    role text NOT NULL,
    trainable boolean NOT NULL,
    loadable boolean NOT NULL,
    params jsonb NOT NULL DEFAULT '{}'::jsonb,
    description text NOT NULL,
    CONSTRAINT model_kinds_params_check CHECK ((jsonb_typeof(params) = 'object'::text)),
    CONSTRAINT model_kinds_pkey PRIMARY KEY (kind),
    CONSTRAINT model_kinds_role_check CHECK ((role = ANY (ARRAY['encoder'::text, 'inverter'::text, 'map'::text, 'next-vector'::text, 'vectors'::text])))
);
COMMENT ON TABLE vk.model_kinds IS 'Kinds of model versions and their role (encoder, inverter, map, next-vector, vectors), with the parameters a train job takes: {"name": {"type", "default", "min", "max", "choices", "roles", "help"}}. Filled from the Python registry by every upgrade.';

CREATE TABLE vk.models (
    id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL,
    version integer NOT NULL,
    kind text NOT NULL,
    dim integer NOT NULL,
    distance text NOT NULL DEFAULT 'cosine'::text,
    params jsonb NOT NULL DEFAULT '{}'::jsonb,
    fingerprint vector,
    status text NOT NULL DEFAULT 'ready'::text,
    trained_by_job bigint,
    metrics jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    updated_at timestamp with time zone NOT NULL DEFAULT now(),
    storage text NOT NULL DEFAULT 'vector'::text,
    CONSTRAINT models_check CHECK (((fingerprint IS NULL) OR (vector_dims(fingerprint) = dim))),
    CONSTRAINT models_dim_check CHECK (((dim >= 1) AND (dim <= 16000))),
    CONSTRAINT models_distance_check CHECK ((distance = ANY (ARRAY['cosine'::text, 'l2'::text, 'ip'::text]))),
    CONSTRAINT models_name_check CHECK (((name ~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]*$'::text) AND (name !~ '@'::text))),
    CONSTRAINT models_name_version_key UNIQUE (name, version),
    CONSTRAINT models_pkey PRIMARY KEY (id),
    CONSTRAINT models_status_check CHECK ((status = ANY (ARRAY['training'::text, 'ready'::text, 'active'::text, 'retired'::text, 'failed'::text]))),
    CONSTRAINT models_storage_check CHECK ((storage = ANY (ARRAY['vector'::text, 'halfvec'::text]))),
    CONSTRAINT models_version_check CHECK ((version > 0))
);
COMMENT ON TABLE vk.models IS 'One row per model version (name@version): kind, dimension, distance, fingerprint, status.';
COMMENT ON COLUMN vk.models.storage IS 'vector (4 bytes a dimension) or halfvec (2 bytes: half the index, same recall): the precision of the version''s HNSW index and searches. Set with vk.set_storage before the version has vectors, or the train parameter storage.';

CREATE TABLE vk.predictions (
    job_id bigint NOT NULL,
    collection_id bigint NOT NULL,
    model_id bigint NOT NULL,
    group_key text NOT NULL,
    context_pks text[] NOT NULL,
    vector vector NOT NULL,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    recovered jsonb,
    CONSTRAINT predictions_pkey PRIMARY KEY (job_id),
    CONSTRAINT predictions_recovered_check CHECK (((recovered IS NULL) OR (jsonb_typeof(recovered) = 'object'::text)))
);
ALTER TABLE vk.predictions ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE vk.predictions IS 'Predicted next vectors: the group, the rows it was predicted from (oldest first), the model; vk.predicted(job) gives the nearest stored texts.';
COMMENT ON COLUMN vk.predictions.recovered IS 'The text recovered for the predicted vector (the better of the best ready inverter and the nearest stored text): body, method, model, similarity (cosine of the text re-embedded), and every method tried.';

CREATE TABLE vk.queue (
    collection_id bigint NOT NULL,
    pk text NOT NULL,
    model_id bigint NOT NULL,
    enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
    run_after timestamp with time zone NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    dead boolean NOT NULL DEFAULT false,
    metadata jsonb,
    priority smallint NOT NULL DEFAULT 0,
    CONSTRAINT queue_pkey PRIMARY KEY (collection_id, pk, model_id),
    CONSTRAINT queue_priority_check CHECK (((priority >= 0) AND (priority <= 2)))
);
CREATE INDEX queue_ready_idx ON vk.queue USING btree (priority, run_after) WHERE (NOT dead);
COMMENT ON TABLE vk.queue IS 'Embedding work queued by triggers; dead rows keep their last error and are never dropped silently.';
COMMENT ON COLUMN vk.queue.metadata IS 'The row''s metadata as the claim read it, written with its vectors.';
COMMENT ON COLUMN vk.queue.priority IS 'Claim order: 0 a row the application wrote, 1 a bulk statement''s row or a re-queue (set_chunking), 2 a backfill (a new version, vk.reembed); within one, oldest first.';

CREATE TABLE vk.recovered (
    adopted_id bigint NOT NULL,
    pk text NOT NULL,
    method text NOT NULL,
    body text,
    similarity double precision,
    source_collection text,
    source_pk text,
    model_id bigint NOT NULL,
    reference_model_id bigint,
    job_id bigint,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    recovered_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT recovered_method_check CHECK ((method ~ '^[a-z][a-z0-9-]*$'::text)),
    CONSTRAINT recovered_pkey PRIMARY KEY (adopted_id, pk, method)
);
ALTER TABLE vk.recovered ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE vk.recovered IS 'Text recovered from adopted vectors, with provenance (method, source row, similarity, models, job). Never original text.';

CREATE TABLE vk.schedules (
    id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    kind text NOT NULL,
    params jsonb NOT NULL DEFAULT '{}'::jsonb,
    collection_id bigint,
    every interval NOT NULL,
    next_run_at timestamp with time zone NOT NULL DEFAULT now(),
    last_job_id bigint,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT schedules_every_check CHECK ((every >= '00:01:00'::interval)),
    CONSTRAINT schedules_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE vk.schedules IS 'Jobs created periodically (every interval) by the workers, like a nightly retrain.';

ALTER TABLE vk.adopted ADD CONSTRAINT adopted_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.models(id);
ALTER TABLE vk.collection_models ADD CONSTRAINT collection_models_collection_id_fkey FOREIGN KEY (collection_id) REFERENCES vk.collections(id) ON DELETE CASCADE;
ALTER TABLE vk.collection_models ADD CONSTRAINT collection_models_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.models(id);
ALTER TABLE vk.collections ADD CONSTRAINT collections_default_model_id_fkey FOREIGN KEY (default_model_id) REFERENCES vk.models(id);
ALTER TABLE vk.coordinates ADD CONSTRAINT coordinates_collection_id_fkey FOREIGN KEY (collection_id) REFERENCES vk.collections(id) ON DELETE CASCADE;
ALTER TABLE vk.coordinates ADD CONSTRAINT coordinates_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.maps(model_id) ON DELETE CASCADE;
ALTER TABLE vk.deployments ADD CONSTRAINT deployments_collection_id_fkey FOREIGN KEY (collection_id) REFERENCES vk.collections(id) ON DELETE CASCADE;
ALTER TABLE vk.deployments ADD CONSTRAINT deployments_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.models(id) ON DELETE CASCADE;
ALTER TABLE vk.embed_cache ADD CONSTRAINT embed_cache_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.models(id) ON DELETE CASCADE;
ALTER TABLE vk.embed_requests ADD CONSTRAINT embed_requests_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.models(id) ON DELETE CASCADE;
ALTER TABLE vk.embeddings ADD CONSTRAINT embeddings_collection_id_fkey FOREIGN KEY (collection_id) REFERENCES vk.collections(id) ON DELETE CASCADE;
ALTER TABLE vk.embeddings ADD CONSTRAINT embeddings_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.models(id);
ALTER TABLE vk.hybrid_settings ADD CONSTRAINT hybrid_settings_collection_id_fkey FOREIGN KEY (collection_id) REFERENCES vk.collections(id) ON DELETE CASCADE;
ALTER TABLE vk.jobs ADD CONSTRAINT jobs_collection_id_fkey FOREIGN KEY (collection_id) REFERENCES vk.collections(id) ON DELETE SET NULL;
ALTER TABLE vk.jobs ADD CONSTRAINT jobs_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.models(id);
ALTER TABLE vk.jobs ADD CONSTRAINT jobs_schedule_id_fkey FOREIGN KEY (schedule_id) REFERENCES vk.schedules(id) ON DELETE SET NULL;
ALTER TABLE vk.maps ADD CONSTRAINT maps_collection_id_fkey FOREIGN KEY (collection_id) REFERENCES vk.collections(id) ON DELETE CASCADE;
ALTER TABLE vk.maps ADD CONSTRAINT maps_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.models(id) ON DELETE CASCADE;
ALTER TABLE vk.maps ADD CONSTRAINT maps_source_model_id_fkey FOREIGN KEY (source_model_id) REFERENCES vk.models(id) ON DELETE CASCADE;
ALTER TABLE vk.model_artifacts ADD CONSTRAINT model_artifacts_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.models(id) ON DELETE CASCADE;
ALTER TABLE vk.models ADD CONSTRAINT models_trained_by_job_fkey FOREIGN KEY (trained_by_job) REFERENCES vk.jobs(id);
ALTER TABLE vk.predictions ADD CONSTRAINT predictions_collection_id_fkey FOREIGN KEY (collection_id) REFERENCES vk.collections(id) ON DELETE CASCADE;
ALTER TABLE vk.predictions ADD CONSTRAINT predictions_job_id_fkey FOREIGN KEY (job_id) REFERENCES vk.jobs(id) ON DELETE CASCADE;
ALTER TABLE vk.predictions ADD CONSTRAINT predictions_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.models(id) ON DELETE CASCADE;
ALTER TABLE vk.queue ADD CONSTRAINT queue_collection_id_fkey FOREIGN KEY (collection_id) REFERENCES vk.collections(id) ON DELETE CASCADE;
ALTER TABLE vk.queue ADD CONSTRAINT queue_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.models(id) ON DELETE CASCADE;
ALTER TABLE vk.recovered ADD CONSTRAINT recovered_adopted_id_fkey FOREIGN KEY (adopted_id) REFERENCES vk.adopted(id) ON DELETE CASCADE;
ALTER TABLE vk.recovered ADD CONSTRAINT recovered_job_id_fkey FOREIGN KEY (job_id) REFERENCES vk.jobs(id) ON DELETE SET NULL;
ALTER TABLE vk.recovered ADD CONSTRAINT recovered_model_id_fkey FOREIGN KEY (model_id) REFERENCES vk.models(id);
ALTER TABLE vk.recovered ADD CONSTRAINT recovered_reference_model_id_fkey FOREIGN KEY (reference_model_id) REFERENCES vk.models(id);
ALTER TABLE vk.schedules ADD CONSTRAINT schedules_collection_id_fkey FOREIGN KEY (collection_id) REFERENCES vk.collections(id) ON DELETE CASCADE;
ALTER TABLE vk.schedules ADD CONSTRAINT schedules_last_job_id_fkey FOREIGN KEY (last_job_id) REFERENCES vk.jobs(id) ON DELETE SET NULL;
