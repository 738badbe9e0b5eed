"""The errors an operation raises that the user can fix (a message, not a traceback)."""

from vectorkeep.db.artifacts import ArtifactError
from vectorkeep.db.contract import SchemaMismatch
from vectorkeep.workers.encoders.base import EncoderError


class JobFailed(Exception):
    """A job an operation waited for ended without succeeding."""


# Bad input the user can fix: a model that does not load, a wrong path, an
# unknown name. Database errors (psycopg.Error) carry their own message and hint.
USER_ERRORS: tuple[type[Exception], ...] = (
    EncoderError,
    ArtifactError,
    JobFailed,
    SchemaMismatch,
    ValueError,
    LookupError,
    OSError,
)
