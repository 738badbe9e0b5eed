"""Recovery: adopted vector-only tables, vk.recovered with provenance, recover jobs.

Revision ID: 0003_recovery
Revises: 0002_versioned
Create Date: 2026-11-25
"""

from vectorkeep import sql
from vectorkeep.db.migrate import apply_sql

revision: str = "0003_recovery"
down_revision: str | None = "0002_versioned"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for path in sql.migration_files("0003_recovery"):
        apply_sql(path)


def downgrade() -> None:
    apply_sql("0003_recovery/down.sql")
    # vk.trainable_kinds as revision 0002 defined it.
    apply_sql("0002_versioned/20_jobs.sql")
