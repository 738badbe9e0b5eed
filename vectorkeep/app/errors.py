"""The errors an operation raises that the user can fix (a message, not a traceback).

USER_ERRORS names classes of modules that import numpy; it is built when first read (`user_errors()`),
so that importing this module (the command line does, to parse its arguments) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


class JobFailed(Exception):
    """A job an operation waited for ended without succeeding."""


if TYPE_CHECKING:
    USER_ERRORS: tuple[type[Exception], ...]


def user_errors() -> tuple[type[Exception], ...]:
    """Bad input the user can fix: a model that does not load, a wrong path, an unknown name.
    Database errors (psycopg.Error) carry their own message and hint."""
    from vectorkeep.db.artifacts import ArtifactError
    from vectorkeep.db.contract import SchemaMismatch
    from vectorkeep.workers.encoders.base import EncoderError

    return (EncoderError, ArtifactError, JobFailed, SchemaMismatch, ValueError, LookupError, OSError)


def __getattr__(name: str) -> Any:
    if name == "USER_ERRORS":
        return user_errors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
