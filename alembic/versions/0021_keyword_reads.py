"""Keyword search reads each word's postings by impact without looking every chunk met up
by its key (Fagin's NRA: bounds from what was read, exact scores for the chunks that can
still enter), and scores every posting of the words where that reads less.

Revision ID: 0021_keyword_reads
Revises: 0020_bm25
Create Date: 2026-12-06
"""

from vectorkeep.db.migrate import apply_definitions, restore_definitions

revision: str = "0021_keyword_reads"
down_revision: str | None = "0020_bm25"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_definitions(revision)


def downgrade() -> None:
    restore_definitions("0020_bm25")
