"""Search as users need it: text queries in SQL (vk.embed, served by workers'
interactive lane over a dblink loopback), metadata beside the vectors with
filtered search, and hybrid keyword + vector ranking.

Revision ID: 0011_search
Revises: 0010_security
Create Date: 2026-11-26
"""

from alembic import op
from vectorkeep.db.definitions import loosen_row_type_users
from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0011_search"
down_revision: str | None = "0010_security"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # 10_tables.sql adds a column with a default to vk.collections; apply_definitions restores
    # the functions that use its row type (see loosen_row_type_users).
    loosen_row_type_users(op.get_bind().connection.driver_connection, "vk.collections")
    apply_sql("migrations/0011_search/10_tables.sql")
    apply_definitions(revision)


def downgrade() -> None:
    apply_sql("migrations/0011_search/down.sql")
    apply_sql("migrations/compat/0011_down_empty_dblink_schema.sql")
    restore_definitions("0010_security")
