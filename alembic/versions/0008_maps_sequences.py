"""Maps and sequences: Parametric UMAP versions with their coordinates
(vk.maps, vk.coordinates, vk.map_gaps), ordered collections and next-vector
models (vk.set_order, vk.predict_next, vk.predicted), gated activation.

Revision ID: 0008_maps_sequences
Revises: 0007_chunks
Create Date: 2026-11-25
"""

from vectorkeep import sql
from vectorkeep.db.migrate import apply_sql, reapply_idempotent

revision: str = "0008_maps_sequences"
down_revision: str | None = "0007_chunks"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for path in sql.migration_files("0008_maps_sequences"):
        apply_sql(path)


def downgrade() -> None:
    apply_sql("0008_maps_sequences/down.sql")
    reapply_idempotent(through="0007_chunks")
