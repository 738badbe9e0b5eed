"""Reliability: record when the encoder truncated a text (vk.embeddings.truncated).

Revision ID: 0004_reliability
Revises: 0003_recovery
Create Date: 2026-11-25
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0004_reliability"
down_revision: str | None = "0003_recovery"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0004_reliability/10_tables.sql")
    apply_definitions(revision)


def downgrade() -> None:
    apply_sql("migrations/0004_reliability/down.sql")
    restore_definitions("0003_recovery")
