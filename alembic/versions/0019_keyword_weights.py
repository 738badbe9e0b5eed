"""Keyword and hybrid search compute a query's word weights once (a MATERIALIZED CTE)
rather than once per matching row over every match: quadratic in the matches before.

Revision ID: 0019_keyword_weights
Revises: 0018_shard_settings
Create Date: 2026-12-06
"""

from vectorkeep.db.migrate import apply_definitions, restore_definitions

revision: str = "0019_keyword_weights"
down_revision: str | None = "0018_shard_settings"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_definitions(revision)


def downgrade() -> None:
    restore_definitions("0018_shard_settings")
