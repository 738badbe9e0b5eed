"""Recovery: adopted vector-only tables, vk.recovered with provenance, recover jobs.

Revision ID: 0003_recovery
Revises: 0002_versioned
Create Date: 2026-11-25
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0003_recovery"
down_revision: str | None = "0002_versioned"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0003_recovery/10_tables.sql")
    apply_definitions(revision)


def downgrade() -> None:
    apply_sql("migrations/0003_recovery/down.sql")
    restore_definitions("0002_versioned")
