"""Entry point of the `vectorkeep` console script (the commands live in workers/cli.py)."""

from vectorkeep.workers.cli import main

__all__ = ["main"]
