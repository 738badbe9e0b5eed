"""Roles: vk_app, vk_worker, vk_admin with their privileges; functions that act for
their callers run as their owner with a fixed search_path.

Revision ID: 0005_roles
Revises: 0004_reliability
Create Date: 2026-11-25
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0005_roles"
down_revision: str | None = "0004_reliability"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0005_roles/10_roles.sql")
    apply_definitions(revision)


def downgrade() -> None:
    apply_sql("migrations/0005_roles/down.sql")
    restore_definitions("0004_reliability")
