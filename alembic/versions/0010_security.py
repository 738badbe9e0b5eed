"""Security model: text and order expressions run with their author's rights
(vk_expr.*_c<id>, checked at registration on real rows), reading vk's copies
follows the source table (row-level security on vk's tables), one bad
expression or row fails alone.

Revision ID: 0010_security
Revises: 0009_sql_centre
Create Date: 2026-11-26
"""

from alembic import op
from vectorkeep.db.definitions import loosen_row_type_users
from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0010_security"
down_revision: str | None = "0009_sql_centre"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # 10_authors.sql adds columns with defaults to vk.collections; apply_definitions restores
    # the functions that use its row type (see loosen_row_type_users).
    loosen_row_type_users(op.get_bind().connection.driver_connection, "vk.collections")
    apply_sql("migrations/0010_security/10_authors.sql")
    apply_definitions(revision)
    apply_sql("migrations/0010_security/50_expressions.sql")


def downgrade() -> None:
    apply_sql("migrations/0010_security/down.sql")
    restore_definitions("0009_sql_centre")
