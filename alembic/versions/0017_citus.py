"""Distributable on Citus: functions that read tables get string bodies (Citus 14 cannot
run SQL-standard bodies that read its tables, and they close dependency cycles among
distributed objects), vk.status reads row by row where the caller is, upserts take their
timestamps from the new row, a worker's batch comes from one collection (FOR UPDATE on one
shard), insert triggers queue from an array rather than their transition table; and
vk.distribute(), which turns the schema into reference and distributed tables.

Revision ID: 0017_citus
Revises: 0016_servers
Create Date: 2026-12-06
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0017_citus"
down_revision: str | None = "0016_servers"
branch_labels: str | None = None
depends_on: str | None = None

# Every collection's INSERT trigger function is written again by the
# vk._install_insert_trigger in place (0015's file does exactly that).
REINSTALL_INSERT_TRIGGERS = "migrations/0015_safety/50_insert_triggers.sql"


def upgrade() -> None:
    apply_sql("migrations/0017_citus/10_tables.sql")
    apply_definitions(revision)
    apply_sql(REINSTALL_INSERT_TRIGGERS)


def downgrade() -> None:
    apply_sql("migrations/0017_citus/down.sql")
    restore_definitions("0016_servers")
    apply_sql(REINSTALL_INSERT_TRIGGERS)
