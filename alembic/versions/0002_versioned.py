"""Versioned models: artifacts, train/reembed jobs with leases, schedules,
activation with gates, retirement.

Revision ID: 0002_versioned
Revises: 0001_core
Create Date: 2026-11-25
"""

from vectorkeep import sql
from vectorkeep.db.migrate import apply_sql

revision: str = "0002_versioned"
down_revision: str | None = "0001_core"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for path in sql.migration_files("0002_versioned"):
        apply_sql(path)


def downgrade() -> None:
    apply_sql("0002_versioned/down.sql")
    # vk.add_model as revision 0001 defined it.
    apply_sql("0001_core/30_collections.sql")
