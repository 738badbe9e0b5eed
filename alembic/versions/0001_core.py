"""Core schema vk: models, collections, documents, embeddings, queue, jobs,
triggers, search/recovery functions and the status view.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-25
"""

from vectorkeep import sql
from vectorkeep.db.migrate import apply_sql

revision: str = "0001_core"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for path in sql.migration_files("0001_core"):
        apply_sql(path)


def downgrade() -> None:
    apply_sql("0001_core/down.sql")
