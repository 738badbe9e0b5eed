"""Core schema vk: models, collections, documents, embeddings, queue, jobs,
triggers, search/recovery functions and the status view.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-25
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql

revision: str = "0001_core"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0001_core/00_extension.sql")
    apply_sql("migrations/0001_core/10_tables.sql")
    # The seed creates documents_touch itself.
    apply_definitions(revision, skip=("trigger documents_touch ON vk.documents",))
    apply_sql("migrations/0001_core/90_seed.sql")


def downgrade() -> None:
    apply_sql("migrations/0001_core/down.sql")
