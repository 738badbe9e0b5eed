"""Released revisions are frozen: their run-once migrations, their recorded catalogue
(sql/releases/<revision>.json) and the statements kept at their release
(sql/releases/<revision>.queries.sql) never change; a change is a new revision.

`vectorkeep schema release` freezes the head revision: it appends the sha256 of
each of those files to sql/frozen.txt. If this test fails, write the change as a
new revision (sql/migrations/000N_*/, an alembic revision, and edit
sql/definitions/ in place) instead of editing a file that databases in the
field have already applied; and never edit a line of sql/frozen.txt.
"""

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SQL = ROOT / "sql"
# Lines of sql/frozen.txt are never edited or removed once committed, from this commit on (the one
# that made releasing one command); before it, some were re-hashed by hand.
APPEND_ONLY_SINCE = "e038420"


def frozen() -> dict[str, str]:
    lines = (SQL / "frozen.txt").read_text().splitlines()
    return {path: digest for digest, path in (line.split() for line in lines if line and not line.startswith("#"))}


def test_released_files_are_unchanged() -> None:
    recorded = frozen()
    assert recorded, "sql/frozen.txt lists no file"
    actual = {path: hashlib.sha256((SQL / path).read_bytes()).hexdigest() for path in recorded}
    changed = [f"{digest}  {path}" for path, digest in actual.items() if digest != recorded[path]]
    assert changed == [], "released SQL changed; new hashes:\n" + "\n".join(changed)


def test_every_file_of_a_released_revision_is_frozen() -> None:
    revisions = {Path(path).name.removesuffix(".json") for path in frozen() if path.endswith(".json")}
    files = {str(p.relative_to(SQL)) for rev in revisions for p in (SQL / "migrations" / rev).glob("*.sql")}
    files |= {f"releases/{rev}.json" for rev in revisions}
    files |= {f"releases/{rev}.queries.sql" for rev in revisions if (SQL / "releases" / f"{rev}.queries.sql").exists()}
    assert files == set(frozen())


def test_frozen_lines_are_never_edited_in_git_history() -> None:
    """Each commit that changed sql/frozen.txt since APPEND_ONLY_SINCE only added lines: re-hashing a
    released file after the fact would pass the tests above, so history is read too."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    known = subprocess.run([git, "cat-file", "-e", f"{APPEND_ONLY_SINCE}^{{commit}}"], cwd=ROOT, check=False)
    if known.returncode != 0:
        pytest.skip(f"a shallow clone without {APPEND_ONLY_SINCE}")
    diff = subprocess.run(
        [git, "log", "-p", "--format=commit %h", "--unified=0", f"{APPEND_ONLY_SINCE}..HEAD", "--", "sql/frozen.txt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    removed = [line for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert removed == [], "lines of sql/frozen.txt were edited or removed:\n" + "\n".join(removed)
