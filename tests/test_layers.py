"""The layers hold: import-linter's contracts ([tool.importlinter] in pyproject.toml) pass.

lint-imports finds a package's modules by walking its folder, but vectorkeep's
subpackages live in top-level folders (pyproject's package-dir: vectorkeep.db
is db/, vectorkeep.workers is workers/, ...), so neither the checkout nor an
editable install shows it the whole package. The test links the folders into
the layout a wheel installs and runs lint-imports there. By hand:
`python tests/test_layers.py`.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def installed_layout(target: Path) -> Path:
    """Symbolic links in `target` arranged as pyproject's package-dir installs the package; `target`."""
    package_dir: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    for package, source in sorted(package_dir.items(), key=lambda item: item[0].count(".")):
        dest, folder = target.joinpath(*package.split(".")), (ROOT / source).resolve()
        if dest.exists():
            # Already there inside its parent's folder (vectorkeep.workers.encoders is workers/encoders).
            assert dest.resolve() == folder, f"{package} is {source}, not {dest.resolve()}"
        elif "." not in package:
            # The root package: a real folder, so that the subpackages kept elsewhere can be linked into it.
            dest.mkdir(parents=True)
            for entry in folder.iterdir():
                (dest / entry.name).symlink_to(entry)
        else:
            dest.symlink_to(folder, target_is_directory=True)
    return target


def lint_imports(target: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with pyproject's contracts, over the installed layout built in `target`."""
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert command, "import-linter is not installed (pip install -e '.[test]')"
    installed_layout(target)
    return subprocess.run(
        [command, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=target,  # lint-imports puts its working folder first on sys.path
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_import_linter_contracts_pass(tmp_path: Path) -> None:
    done = lint_imports(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        done = lint_imports(Path(folder))
    print(done.stdout + done.stderr, end="")
    sys.exit(done.returncode)
