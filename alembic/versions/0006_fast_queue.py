"""Fast queue triggers: a static INSERT trigger function per collection, and at
most one NOTIFY per session every 50 ms.

Revision ID: 0006_fast_queue
Revises: 0005_roles
Create Date: 2026-11-25
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0006_fast_queue"
down_revision: str | None = "0005_roles"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0006_fast_queue/05_rename.sql")
    apply_definitions(revision)
    apply_sql("migrations/0006_fast_queue/40_existing.sql")


def downgrade() -> None:
    apply_sql("migrations/0006_fast_queue/down.sql")
    restore_definitions("0005_roles")
