"""Roles: vk_app, vk_worker, vk_admin with their privileges; functions that act for
their callers run as their owner with a fixed search_path.

Revision ID: 0005_roles
Revises: 0004_reliability
Create Date: 2026-11-25
"""

from vectorkeep import sql
from vectorkeep.db.migrate import apply_sql

revision: str = "0005_roles"
down_revision: str | None = "0004_reliability"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for path in sql.migration_files("0005_roles"):
        apply_sql(path)


def downgrade() -> None:
    apply_sql("0005_roles/down.sql")
