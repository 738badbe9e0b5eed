"""vectorkeep: PostgreSQL as the centre of the embedding lifecycle."""

__version__ = "0.1.0"
