"""SQLAlchemy Core metadata of schema vk, for applications that use SQLAlchemy.

The schema itself is created by the migrations (sql/); this mirrors it so that
queries can be composed in Python (tests/test_tables.py keeps the two equal).
"""

from pgvector.sqlalchemy import VECTOR
from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INTERVAL, JSONB

metadata = MetaData(schema="vk")

models = Table(
    "models",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", Text, nullable=False),
    Column("dim", Integer, nullable=False),
    Column("distance", Text, nullable=False),
    Column("params", JSONB, nullable=False),
    Column("fingerprint", VECTOR()),
    Column("status", Text, nullable=False),
    Column("trained_by_job", BigInteger),
    Column("metrics", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("storage", Text, nullable=False),
)

model_kinds = Table(
    "model_kinds",
    metadata,
    Column("kind", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("trainable", Boolean, nullable=False),
    Column("loadable", Boolean, nullable=False),
    Column("params", JSONB, nullable=False),
    Column("description", Text, nullable=False),
)

collections = Table(
    "collections",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("source", Text, nullable=False),  # regclass, read as its name
    Column("pk_column", Text, nullable=False),
    Column("pk_type", Text, nullable=False),
    Column("text_expression", Text, nullable=False),
    Column("default_model_id", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("chunking", JSONB, nullable=False),
    Column("group_expression", Text),
    Column("position_expression", Text),
    Column("registered_by", Text, nullable=False),  # name: the role whose rights the text expression runs with
    Column("order_registered_by", Text),
    Column("copies_row_security", Boolean, nullable=False),
    Column("metadata_expression", Text),
    Column("metadata_registered_by", Text),  # name
    Column("text_search", Text, nullable=False),  # regconfig, read as its name
)

collection_models = Table(
    "collection_models",
    metadata,
    Column("collection_id", BigInteger, primary_key=True),
    Column("model_id", BigInteger, primary_key=True),
    Column("index_name", Text, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

documents = Table(
    "documents",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("body", Text),
    Column("metadata", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

embeddings = Table(
    "embeddings",
    metadata,
    Column("collection_id", BigInteger, primary_key=True),
    Column("pk", Text, primary_key=True),
    Column("model_id", BigInteger, primary_key=True),
    Column("embedding", VECTOR(), nullable=False),
    Column("body", Text, nullable=False),
    Column("text_sha256", LargeBinary, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    Column("truncated", Boolean, nullable=False),
    Column("chunk", Integer, primary_key=True),
    Column("start_char", Integer, nullable=False),
    Column("end_char", Integer),
    Column("metadata", JSONB),
)

queue = Table(
    "queue",
    metadata,
    Column("collection_id", BigInteger, primary_key=True),
    Column("pk", Text, primary_key=True),
    Column("model_id", BigInteger, primary_key=True),
    Column("enqueued_at", DateTime(timezone=True), nullable=False),
    Column("run_after", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("dead", Boolean, nullable=False),
    Column("metadata", JSONB),
    Column("priority", SmallInteger, nullable=False),
)

embed_requests = Table(
    "embed_requests",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("model_id", BigInteger, nullable=False),
    Column("text_sha256", LargeBinary, nullable=False),
    Column("input", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("error", Text),
    Column("asked_by", Text, nullable=False),
    Column("caller_pid", Integer, nullable=False),
    Column("link_pid", Integer, nullable=False),
    Column("claimed_by", Integer),
    Column("answer", VECTOR()),
)

embed_cache = Table(
    "embed_cache",
    metadata,
    Column("model_id", BigInteger, primary_key=True),
    Column("text_sha256", LargeBinary, primary_key=True),
    Column("embedding", VECTOR(), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("asked_by", Text, primary_key=True),
)

# On Citus, per node: the keys the capturing triggers of distributed tables recorded (vk.move_captured_v1).
captured = Table(
    "captured",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("collection_id", BigInteger, nullable=False),
    Column("pk", Text, nullable=False),
    Column("op", CHAR(1), nullable=False),
    Column("captured_at", DateTime(timezone=True), nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("params", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("collection_id", BigInteger),
    Column("model_id", BigInteger),
    Column("progress", JSONB, nullable=False),
    Column("metrics", JSONB, nullable=False),
    Column("error", Text),
    Column("worker", Text),
    Column("lease_until", DateTime(timezone=True)),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("snapshot", JSONB, nullable=False),
    Column("log_tail", Text),
    Column("max_attempts", Integer, nullable=False),
    Column("schedule_id", BigInteger),
)

model_artifacts = Table(
    "model_artifacts",
    metadata,
    Column("model_id", BigInteger, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("sha256", LargeBinary, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("params", JSONB, nullable=False),
    Column("collection_id", BigInteger),
    Column("every", INTERVAL, nullable=False),
    Column("next_run_at", DateTime(timezone=True), nullable=False),
    Column("last_job_id", BigInteger),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

adopted = Table(
    "adopted",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("source", Text, nullable=False),  # regclass, read as its name
    Column("pk_column", Text, nullable=False),
    Column("pk_type", Text, nullable=False),
    Column("vector_column", Text, nullable=False),
    Column("model_id", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

recovered = Table(
    "recovered",
    metadata,
    Column("adopted_id", BigInteger, primary_key=True),
    Column("pk", Text, primary_key=True),
    Column("method", Text, primary_key=True),
    Column("body", Text),
    Column("similarity", Float),
    Column("source_collection", Text),
    Column("source_pk", Text),
    Column("model_id", BigInteger, nullable=False),
    Column("reference_model_id", BigInteger),
    Column("job_id", BigInteger),
    Column("details", JSONB, nullable=False),
    Column("recovered_at", DateTime(timezone=True), nullable=False),
)

maps = Table(
    "maps",
    metadata,
    Column("model_id", BigInteger, primary_key=True),
    Column("collection_id", BigInteger, nullable=False),
    Column("source_model_id", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

coordinates = Table(
    "coordinates",
    metadata,
    Column("collection_id", BigInteger, primary_key=True),
    Column("pk", Text, primary_key=True),
    Column("model_id", BigInteger, primary_key=True),
    Column("x", Float, nullable=False),
    Column("y", Float, nullable=False),
    Column("text_sha256", LargeBinary, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
)

deployments = Table(
    "deployments",
    metadata,
    Column("collection_id", BigInteger, primary_key=True),
    Column("role", Text, primary_key=True),
    Column("model_id", BigInteger, nullable=False),
    Column("activated_at", DateTime(timezone=True), nullable=False),
)

predictions = Table(
    "predictions",
    metadata,
    Column("job_id", BigInteger, primary_key=True),
    Column("collection_id", BigInteger, nullable=False),
    Column("model_id", BigInteger, nullable=False),
    Column("group_key", Text, nullable=False),
    Column("context_pks", ARRAY(Text), nullable=False),
    Column("vector", VECTOR(), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("recovered", JSONB),
)

# BM25 (revision 0020): each chunk's words, the collections' counts (deltas, summed), the norm of
# the stored weights; kept by triggers on vk.embeddings (sql/definitions/33_keywords.sql).
keyword_postings = Table(
    "keyword_postings",
    metadata,
    Column("collection_id", BigInteger, primary_key=True),
    Column("model_id", BigInteger, primary_key=True),
    Column("pk", Text, primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("term", Text, primary_key=True),
    Column("tf", Integer, nullable=False),
    Column("length", Integer, nullable=False),
    Column("impact", Float, nullable=False),
)

keyword_stats = Table(
    "keyword_stats",
    metadata,
    Column("collection_id", BigInteger, nullable=False),
    Column("model_id", BigInteger, nullable=False),
    Column("term", Text, nullable=False),
    Column("chunks", BigInteger, nullable=False),
    Column("words", BigInteger, nullable=False),
)

keyword_norms = Table(
    "keyword_norms",
    metadata,
    Column("collection_id", BigInteger, primary_key=True),
    Column("model_id", BigInteger, primary_key=True),
    Column("norm", Float, nullable=False),
)

# Hybrid search's settings per collection, versioned (the latest applies).
hybrid_settings = Table(
    "hybrid_settings",
    metadata,
    Column("collection_id", BigInteger, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("fusion", Text, nullable=False),
    Column("keyword_weight", Float, nullable=False),
    Column("vector_weight", Float, nullable=False),
    Column("ndcg_at_10", Float),
    Column("queries", Integer),
    Column("tried", JSONB),
    Column("chosen_by", Text, nullable=False),
    Column("chosen_at", DateTime(timezone=True), nullable=False),
)

# What encoders behind an API used, per version and job (0: outside any job); revision 0023.
api_usage = Table(
    "api_usage",
    metadata,
    Column("model_id", BigInteger, primary_key=True),
    Column("job_id", BigInteger, primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("inputs", BigInteger, nullable=False),
    Column("tokens", BigInteger, nullable=False),
    Column("retries", BigInteger, nullable=False),
    Column("throttled_seconds", Float, nullable=False),
    Column("failures", BigInteger, nullable=False),
    Column("first_at", DateTime(timezone=True), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
)
