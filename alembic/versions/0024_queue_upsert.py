"""One statement queues a (row, version) pair again (vk._queue_pairs): vk._requeue,
vk._queue_keys and vk.set_chunking call it instead of each writing its own upsert
(vk.set_chunking's copy kept a pair's old priority); the INSERT triggers, written
again, write the same statement out.

Revision ID: 0024_queue_upsert
Revises: 0023_api_encoders
Create Date: 2026-12-07
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0024_queue_upsert"
down_revision: str | None = "0023_api_encoders"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_definitions(revision)
    apply_sql("migrations/0024_queue_upsert/50_insert_triggers.sql")


def downgrade() -> None:
    restore_definitions("0023_api_encoders")
    apply_sql("migrations/0024_queue_upsert/50_insert_triggers.sql")
