"""Scale: a backfill writes a version's vectors first and builds its HNSW index
once (concurrently where the role may), before the version can be activated;
versions store their index and searches in vector or halfvec (vk.models.storage).

Revision ID: 0014_scale
Revises: 0013_recovery
Create Date: 2026-12-02
"""

from alembic import op
from vectorkeep.db.definitions import loosen_row_type_users
from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0014_scale"
down_revision: str | None = "0013_recovery"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # 10_tables.sql adds a column with a default to vk.models; apply_definitions restores
    # the functions that use its row type (see loosen_row_type_users).
    loosen_row_type_users(op.get_bind().connection.driver_connection, "vk.models")
    apply_sql("migrations/0014_scale/10_tables.sql")
    apply_definitions(revision)


def downgrade() -> None:
    apply_sql("migrations/0014_scale/down.sql")
    restore_definitions("0013_recovery")
    apply_sql("migrations/0014_scale/down_90_storage.sql")
