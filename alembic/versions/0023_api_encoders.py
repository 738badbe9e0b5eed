"""Encoders behind an API (kinds openai, voyage and ollama): rows a throttled or unreachable provider
cannot embed now are deferred without spending an attempt (vk.defer_row_v1), and what the APIs cost
is kept per version and job (vk.api_usage, vk.record_api_usage_v1).

Revision ID: 0023_api_encoders
Revises: 0022_careless_input
Create Date: 2026-12-07
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0023_api_encoders"
down_revision: str | None = "0022_careless_input"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0023_api_encoders/10_tables.sql")
    apply_definitions(revision)


def downgrade() -> None:
    restore_definitions("0022_careless_input")
    apply_sql("migrations/0023_api_encoders/down.sql")
