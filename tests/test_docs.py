"""The documentation site: it builds strictly (every page in the nav, every internal link and
anchor resolving), the README stays short and links only to pages that exist, and the site's front
page renders in a real headless browser."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def build(site: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    build(tmp_path / "site")
    assert (tmp_path / "site" / "reference" / "sql" / "index.html").is_file()


def test_the_readme_is_short_and_links_to_pages_that_exist() -> None:
    assert len(README.splitlines()) <= 200
    targets = re.findall(r"\]\(([^)#\s]+)", README)
    assert "docs/quickstart.md" in targets
    assert [t for t in targets if not (ROOT / t).is_file()] == []
    # The site's front page is the README, its links made relative to docs/.
    front = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert front == README.replace("](docs/", "](").replace(
        "[bench/README.md](bench/README.md)", "`bench/README.md` in the repository"
    )


def test_the_front_page_renders_in_a_headless_browser(tmp_path: Path) -> None:
    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium as root)")
    build(tmp_path / "site")
    page = (tmp_path / "site" / "index.html").as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "<title>vectorkeep</title>" in dom
    assert "The two commands" in dom and 'href="quickstart/"' in dom  # the page and its navigation rendered
    shot = tmp_path / "front.png"
    subprocess.run(
        [browser, *flags, "--window-size=1280,900", f"--screenshot={shot}", page],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000  # a page drawn, not a blank one


def test_the_quickstart_gives_the_readmes_two_commands_word_for_word() -> None:
    quickstart = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    commands = [line for line in quickstart.splitlines() if line.startswith("python3 -m venv")]
    assert len(commands) == 2 and all(c in README.splitlines() for c in commands)


def test_the_feature_table_names_places_that_exist_and_every_sql_file() -> None:
    """docs/contributing.md's "Where each feature lives": each file or folder it names exists, and
    every file of sql/definitions/ has a row."""
    text = (ROOT / "docs" / "contributing.md").read_text(encoding="utf-8")
    table = text.split("## Where each feature lives", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    sql_named, missing = set(), []
    for feature, sql_cell, python, app, _docs in rows:
        # One place a layer: one SQL file, one Python place (and, for a model family, the one module
        # that does its database I/O), one command-line module and one application module.
        assert len(re.findall(r"`(\w+)`", sql_cell)) <= 1, feature
        assert all(len(re.findall(r"`", part)) <= 2 for part in python.split("database:")), feature
        assert len(re.findall(r"`cli/", app)) <= 1 and len(re.findall(r"`app/", app)) <= 1, feature
        for name in re.findall(r"`(\w+)`", sql_cell):
            sql_named.add(name)
            if not (ROOT / "sql" / "definitions" / f"{name}.sql").is_file():
                missing.append(f"sql/definitions/{name}.sql")
        for place in re.findall(r"`([\w/.]+)`", python):
            if not (ROOT / place).exists():
                missing.append(place)
        for place in re.findall(r"`([\w/.]+)`", app):
            if not (ROOT / "vectorkeep" / place).exists():
                missing.append(f"vectorkeep/{place}")
    assert missing == []
    every = {p.stem for p in (ROOT / "sql" / "definitions").glob("*.sql")}
    assert every - sql_named == set()
