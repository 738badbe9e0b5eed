"""BM25 keyword search in plain PostgreSQL: each chunk's words and the collection's counts kept by
triggers on vk.embeddings (vk.keyword_postings, vk.keyword_stats, vk.keyword_norms), read in impact
order until nothing unread could enter the results; hybrid search fuses by convex combination or
RRF with per-collection settings (vk.hybrid_settings, vk.tune_hybrid, vk.set_hybrid_defaults).

Revision ID: 0020_bm25
Revises: 0019_keyword_weights
Create Date: 2026-12-06
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0020_bm25"
down_revision: str | None = "0019_keyword_weights"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0020_bm25/10_tables.sql")
    apply_definitions(revision)
    apply_sql("migrations/0020_bm25/60_fill.sql")


def downgrade() -> None:
    apply_sql("migrations/0020_bm25/down.sql")
    restore_definitions("0019_keyword_weights")
