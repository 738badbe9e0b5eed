"""Chunks: long text cut into several vectors a row (vk.embeddings.chunk and its
offsets), a collection's chunking setting, search that returns each row once.

Revision ID: 0007_chunks
Revises: 0006_fast_queue
Create Date: 2026-11-25
"""

from vectorkeep import sql
from vectorkeep.db.migrate import apply_sql, reapply_idempotent

revision: str = "0007_chunks"
down_revision: str | None = "0006_fast_queue"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for path in sql.migration_files("0007_chunks"):
        apply_sql(path)


def downgrade() -> None:
    apply_sql("0007_chunks/down.sql")
    reapply_idempotent(through="0006_fast_queue")
