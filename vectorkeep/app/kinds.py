"""The registry of model kinds (vectorkeep.db.kinds), for the command line's choices and help."""

from vectorkeep.db.kinds import BY_NAME, KINDS, Kind, describe, kind, names

__all__ = ["BY_NAME", "KINDS", "Kind", "describe", "kind", "names", "trainable_help"]


def trainable_help() -> str:
    """Every trainable kind with its parameters, for `vectorkeep train --help`."""
    return describe(k for k in KINDS if k.trainable)
