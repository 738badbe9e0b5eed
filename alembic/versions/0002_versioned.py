"""Versioned models: artifacts, train/reembed jobs with leases, schedules,
activation with gates, retirement.

Revision ID: 0002_versioned
Revises: 0001_core
Create Date: 2026-11-25
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0002_versioned"
down_revision: str | None = "0001_core"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0002_versioned/10_tables.sql")
    apply_definitions(revision)


def downgrade() -> None:
    apply_sql("migrations/0002_versioned/down.sql")
    restore_definitions("0001_core")
