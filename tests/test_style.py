"""The code stays ruff-clean and sends no formatted SQL (the layers: tests/test_layers.py)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    done = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_python_builds_no_sql_by_string_formatting() -> None:
    """SQL lives in sql/; Python sends named queries, never a formatted string."""
    suspicious = []
    for folder in ("db", "workers", "vectorkeep"):
        for path in (ROOT / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if any(p in line for p in ('execute(f"', "execute(f'", 'executemany(f"', '".format(', "'.format(")):
                    suspicious.append(f"{path.relative_to(ROOT)}:{n}")
    assert suspicious == []


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run installs from nothing, then runs what the README's second command runs after its install."""
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("python3 -m venv") and "[test]" in line)
    checks = command.split("pip install -e '.[test]' && ", 1)[1]
    assert checks.startswith(".venv/bin/ruff check") and checks.endswith("python -m pytest")
    assert checks in (ROOT / ".ci" / "run").read_text()
