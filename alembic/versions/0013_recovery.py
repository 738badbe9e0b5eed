"""Recovery that beats the nearest stored text: inverters of any kind (edit search, vec2text)
behind one entry point that keeps the better of an inverter's text and the nearest stored
text, vector by vector, and records each text's method, version and cosine; predictions
get their recovered text (vk.predictions.recovered).

Revision ID: 0013_recovery
Revises: 0012_lifecycle
Create Date: 2026-11-26
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0013_recovery"
down_revision: str | None = "0012_lifecycle"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0013_recovery/10_tables.sql")
    apply_definitions(revision)


def downgrade() -> None:
    apply_sql("migrations/0013_recovery/down.sql")
    restore_definitions("0012_lifecycle")
