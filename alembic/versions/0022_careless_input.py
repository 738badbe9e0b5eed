"""Careless input caught: a filter that matches nothing because of a key no row has or a value of
another JSON type says so (vk.strict_filters makes it an error); vk.attach warns of rows whose text
is NULL; vk.set_text changes a text expression in place; vk.train names its collection; vk.retire
of vectors asks for confirm; keys of any type; vk.adopt takes an encoder; tidy results.

Revision ID: 0022_careless_input
Revises: 0021_keyword_reads
Create Date: 2026-12-07
"""

from vectorkeep.db.migrate import apply_definitions, apply_sql, restore_definitions

revision: str = "0022_careless_input"
down_revision: str | None = "0021_keyword_reads"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    apply_sql("migrations/0022_careless_input/00_drop.sql")
    apply_definitions(revision)


def downgrade() -> None:
    restore_definitions("0021_keyword_reads")
