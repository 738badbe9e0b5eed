"""Runs on the PostgreSQL a DBA already has (15 to 18, pgvector 0.7 or 0.8): a row's
text hash without min(bytea) (PostgreSQL 18 only), filtered search without iterative
index scans where pgvector (0.7) lacks them.

Revision ID: 0016_servers
Revises: 0015_safety
Create Date: 2026-12-06
"""

from vectorkeep.db.migrate import apply_definitions, restore_definitions

revision: str = "0016_servers"
down_revision: str | None = "0015_safety"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_definitions(revision)


def downgrade() -> None:
    restore_definitions("0015_safety")
