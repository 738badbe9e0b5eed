"""Reliability: record when the encoder truncated a text (vk.embeddings.truncated).

Revision ID: 0004_reliability
Revises: 0003_recovery
Create Date: 2026-11-25
"""

from vectorkeep import sql
from vectorkeep.db.migrate import apply_sql

revision: str = "0004_reliability"
down_revision: str | None = "0003_recovery"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for path in sql.migration_files("0004_reliability"):
        apply_sql(path)


def downgrade() -> None:
    apply_sql("0004_reliability/down.sql")
