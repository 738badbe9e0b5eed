"""On Citus a search's HNSW settings reach the shards outside a transaction block: the
k-NN query carries them (vk._on_shard, evaluated once on the node that runs it), and it
stays flat unless a relaxed_order scan needs putting back in order (Citus planned the
wrapped query over several shards in two steps); vk.search returns its rows one by one.

Revision ID: 0018_shard_settings
Revises: 0017_citus
Create Date: 2026-12-06
"""

from vectorkeep.db.migrate import apply_definitions, restore_definitions

revision: str = "0018_shard_settings"
down_revision: str | None = "0017_citus"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_definitions(revision)


def downgrade() -> None:
    restore_definitions("0017_citus")
