"""Chunks: long text cut into several vectors a row (vk.embeddings.chunk and its
offsets), a collection's chunking setting, search that returns each row once.

Revision ID: 0007_chunks
Revises: 0006_fast_queue
Create Date: 2026-11-25
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0007_chunks"
down_revision: str | None = "0006_fast_queue"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0007_chunks/10_tables.sql")
    apply_definitions(revision)


def downgrade() -> None:
    apply_sql("migrations/0007_chunks/down.sql")
    restore_definitions("0006_fast_queue")
