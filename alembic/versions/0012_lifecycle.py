"""Models and jobs an operator can trust: one registry of model kinds (vk.model_kinds,
filled from vectorkeep/db/kinds.py), job parameters and model roles checked when
a job is queued, gates that refuse a collapsed space, schedules that retire old
versions and can be stopped.

Revision ID: 0012_lifecycle
Revises: 0011_search
Create Date: 2026-11-26
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0012_lifecycle"
down_revision: str | None = "0011_search"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0012_lifecycle/10_tables.sql")
    apply_definitions(revision)


def downgrade() -> None:
    apply_sql("migrations/0012_lifecycle/down.sql")
    restore_definitions("0011_search")
