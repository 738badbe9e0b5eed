"""The worker contract: the versioned functions (vk.*_v1) workers and job
runners call. A worker checks, before its first claim, that the schema serves
the version it speaks."""

import psycopg

from vectorkeep.sql import query

# The version of the vk.*_v1 functions this release's workers call.
WORKER_CONTRACT = 1


class SchemaMismatch(RuntimeError):
    """The database's schema does not serve this worker's contract version."""


def check(conn: psycopg.Connection) -> None:
    """Raise SchemaMismatch, saying what to do, unless the schema serves WORKER_CONTRACT."""
    row = conn.execute(query("has_worker_contract")).fetchone()
    served: list[int] = []
    if row and row[0]:
        got = conn.execute(query("worker_contract")).fetchone()
        served = list(got[0]) if got and got[0] else []
    if not conn.autocommit:
        conn.rollback()
    if WORKER_CONTRACT in served:
        return
    if not served or max(served) < WORKER_CONTRACT:
        raise SchemaMismatch(
            f"this worker speaks worker contract {WORKER_CONTRACT}, and the database's schema "
            f"{'serves ' + str(served) if served else 'predates worker contracts'}: "
            "upgrade the schema first (`vectorkeep migrate`, or `alembic upgrade head`), then start the worker"
        )
    raise SchemaMismatch(
        f"this worker speaks worker contract {WORKER_CONTRACT}, which the database's schema no longer serves "
        f"(it serves {served}): upgrade vectorkeep on this machine to the release of the schema"
    )
