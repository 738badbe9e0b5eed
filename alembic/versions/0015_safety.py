"""Safety under attack and load: text queries that cannot race and die with
their caller, scoped per role and fair across roles; live rows claimed before
backfills; row security on jobs; versions usable only by who may read what
they were trained on; owner-run functions on a search_path nobody else writes.

Revision ID: 0015_safety
Revises: 0014_scale
Create Date: 2026-12-06
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0015_safety"
down_revision: str | None = "0014_scale"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0015_safety/10_tables.sql")
    apply_definitions(revision)
    apply_sql("migrations/0015_safety/50_insert_triggers.sql")


def downgrade() -> None:
    apply_sql("migrations/0015_safety/down.sql")
    restore_definitions("0014_scale")
    apply_sql("migrations/0015_safety/50_insert_triggers.sql")
    apply_sql("migrations/0015_safety/down_90_columns.sql")
