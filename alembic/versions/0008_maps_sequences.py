"""Maps and sequences: Parametric UMAP versions with their coordinates
(vk.maps, vk.coordinates, vk.map_gaps), ordered collections and next-vector
models (vk.set_order, vk.predict_next, vk.predicted), gated activation.

Revision ID: 0008_maps_sequences
Revises: 0007_chunks
Create Date: 2026-11-25
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0008_maps_sequences"
down_revision: str | None = "0007_chunks"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0008_maps_sequences/05_rename.sql")
    apply_sql("migrations/0008_maps_sequences/10_tables.sql")
    apply_definitions(revision)


def downgrade() -> None:
    apply_sql("migrations/0008_maps_sequences/down.sql")
    restore_definitions("0007_chunks")
