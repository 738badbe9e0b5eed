"""One current definition per object (sql/definitions/), internal helpers
named with a leading underscore, the worker contract (vk.*_v1, vk.worker_contract).

Revision ID: 0009_sql_centre
Revises: 0008_maps_sequences
Create Date: 2026-11-26
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0009_sql_centre"
down_revision: str | None = "0008_maps_sequences"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0009_sql_centre/10_names.sql")
    apply_definitions(revision)
    apply_sql("migrations/0009_sql_centre/50_insert_triggers.sql")


def downgrade() -> None:
    apply_sql("migrations/0009_sql_centre/down.sql")
    restore_definitions("0008_maps_sequences")
    apply_sql("migrations/0009_sql_centre/down_50_insert_triggers.sql")
