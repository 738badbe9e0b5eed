"""Fast queue triggers: a static INSERT trigger function per collection, and at
most one NOTIFY per session every 50 ms.

Revision ID: 0006_fast_queue
Revises: 0005_roles
Create Date: 2026-11-25
"""

from vectorkeep import sql
from vectorkeep.db.migrate import apply_sql, reapply_idempotent

revision: str = "0006_fast_queue"
down_revision: str | None = "0005_roles"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for path in sql.migration_files("0006_fast_queue"):
        apply_sql(path)


def downgrade() -> None:
    apply_sql("0006_fast_queue/down.sql")
    reapply_idempotent(through="0005_roles")
