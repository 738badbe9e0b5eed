"""The wheel test: the package as `pip install vectorkeep` gives it, not as the checkout runs it.

Every other test runs the editable install, which reads sql/ and alembic/ straight from the
checkout, so a file missing from the wheel's package data goes unnoticed there. This test builds
the wheel from a clean copy of the checkout (the files git tracks, or would), checks that it holds
every file the code reads, installs it (not editable) into a fresh virtual environment and runs
`vectorkeep migrate` and `vectorkeep worker` from it against an empty database.

The fresh environment gets its dependencies (torch and the rest) from the running interpreter's
site-packages through a .pth file rather than from an index: nothing is downloaded. A folder a
.pth adds is not scanned for .pth files itself, so the editable install's finder is not active
there; the test checks that vectorkeep is imported from the wheel.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import embeddings
from vectorkeep.db.connect import connect

ROOT = Path(__file__).resolve().parent.parent

# Checkout folder -> where pyproject's package-dir installs it, written out here rather than read
# from pyproject.toml so that a wrong package-dir fails this test instead of agreeing with it.
INSTALLED_AS = {
    "vectorkeep": "vectorkeep",
    "db": "vectorkeep/db",
    "workers": "vectorkeep/workers",
    "sql": "vectorkeep/sql",
    "alembic": "vectorkeep/migrations",
}
# Files of those folders that nothing reads at run time, and so stay out of the wheel.
NOT_INSTALLED = {"sql/frozen.txt"}  # read by tests/test_frozen_sql.py only

WHERE = (
    "import json, vectorkeep, vectorkeep.db.migrate as m; "
    "print(json.dumps([vectorkeep.__file__, str(m.script_location())]))"
)

# Offline and quick: setuptools and wheel are the running environment's, not a fresh download.
WHEEL_OPTIONS = ["--no-deps", "--no-build-isolation", "--no-index"]
# Offline, and never touching an installed vectorkeep (see make_venv).
INSTALL_OPTIONS = ["--no-deps", "--no-index", "--ignore-installed"]
TIMEOUT = 300  # seconds for one command; a hung worker fails the test rather than the suite


@dataclass(frozen=True)
class Venv:
    root: Path
    python: Path
    script: Path  # the `vectorkeep` console script the wheel installed


def run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; its stdout, or a failure that shows what it printed."""
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def source_files(root: Path) -> list[str]:
    """What a clean clone of `root` has: tracked files plus untracked ones git does not ignore
    (new files not yet committed), minus tracked files deleted from the working tree."""
    listed = run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root)
    return sorted({name for name in listed.split("\0") if name and (root / name).is_file()})


def clean_copy(root: Path, names: list[str], target: Path) -> Path:
    """The checkout's source files copied to `target`: no build/, egg-info, caches or .venv that
    could leak into the wheel and hide a missing package-data entry."""
    for name in names:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest, follow_symlinks=False)
    return target


def build_wheel(source: Path, out: Path) -> Path:
    """`pip wheel` of `source`, offline: the build backend comes from the running environment."""
    run([sys.executable, "-m", "pip", "wheel", "-q", *WHEEL_OPTIONS, "-w", out, source], cwd=out)
    (wheel,) = out.glob("vectorkeep-*.whl")
    return wheel


def installed_path(source_path: str) -> str | None:
    """Where the wheel must hold a checkout file, or None for files outside the package."""
    folder, _, rest = source_path.partition("/")
    if folder not in INSTALLED_AS or not rest or source_path in NOT_INSTALLED:
        return None
    return f"{INSTALLED_AS[folder]}/{rest}"


def expected_files(sources: list[str]) -> set[str]:
    """Every source file of the package folders, as the wheel must name it."""
    return {p for name in sources if (p := installed_path(name)) is not None}


def make_venv(root: Path, wheel: Path) -> Venv:
    """A fresh environment with the wheel installed and the running one's packages beneath it."""
    # No pip of its own (ensurepip takes seconds): the running pip installs into it (--python).
    run([sys.executable, "-m", "venv", "--without-pip", root], cwd=root.parent)
    python = root / "bin" / "python"
    # Installed before the .pth below exists, so pip sees no vectorkeep already there and cannot
    # try to uninstall the running environment's; --ignore-installed makes sure of it.
    run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", *INSTALL_OPTIONS, wheel],
        cwd=root.parent,
    )
    site_packages = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=root).strip()
    )
    dependencies = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    (site_packages / "_vectorkeep_dependencies.pth").write_text("".join(f"{path}\n" for path in dependencies))
    return Venv(root, python, root / "bin" / "vectorkeep")


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without anything that could put the checkout on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}}
    return {**env, **extra}


@pytest.fixture(scope="module")
def sources() -> list[str]:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("the wheel is built from a git checkout's files")
    return source_files(ROOT)


@pytest.fixture(scope="module")
def copy(sources: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_copy(ROOT, sources, tmp_path_factory.mktemp("source"))


@pytest.fixture(scope="module")
def wheel(copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(copy, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("wheel-env") / "venv", wheel)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """An empty working directory: nothing of the checkout is importable from it."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def test_wheel_holds_every_file_the_package_reads(sources: list[str], wheel: Path) -> None:
    expected = expected_files(sources)
    # The files the finding was about, so that the check below cannot pass by expecting nothing.
    for pattern in ("sql/migrations/*/*.sql", "sql/releases/*.json", "sql/definitions/*.sql", "alembic/versions/*.py"):
        assert any(installed_path(p.relative_to(ROOT).as_posix()) in expected for p in ROOT.glob(pattern)), pattern
    assert {"vectorkeep/sql/queries.sql", "vectorkeep/migrations/env.py", "vectorkeep/migrations/script.py.mako"} <= (
        expected
    )
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert sorted(expected - names) == [], "files missing from the wheel (pyproject.toml's package-data)"


def test_installed_wheel_migrates_and_embeds(venv: Venv, elsewhere: Path, empty_db_url: str) -> None:
    env = clean_env(VECTORKEEP_DATABASE_URL=empty_db_url)
    # The package and the alembic scripts it migrates with, both from the wheel, not the checkout.
    where = json.loads(run([venv.python, "-c", WHERE], cwd=elsewhere, env=env))
    assert all(Path(p).resolve().is_relative_to(venv.root.resolve()) for p in where), where

    run([venv.script, "migrate"], cwd=elsewhere, env=env)
    with connect(empty_db_url, autocommit=True) as conn:
        row = conn.execute("INSERT INTO vk.documents (body) VALUES ('Installed from a wheel.') RETURNING id").fetchone()
        assert row is not None
        report = json.loads(
            run([venv.script, "worker", "--until-idle", "--device", "cpu", "--json"], cwd=elsewhere, env=env)
        )
        assert report[0]["embedded"] == 1
        vectors = embeddings(conn)
    assert list(vectors) == [str(row[0])]
    vector = vectors[str(row[0])]
    assert vector["model"] == "minilm@1"
    assert vector["embedding"].to_numpy().shape == (384,)
