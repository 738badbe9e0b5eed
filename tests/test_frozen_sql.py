"""Released revisions are frozen: their run-once migrations and their recorded
catalogue (sql/releases/) never change; a change is a new revision.

sql/frozen.txt lists the sha256 of every file of a released revision. If this
test fails, write the change as a new revision (sql/migrations/000N_*/, an
alembic revision, and edit sql/definitions/ in place) instead of editing a file
that databases in the field have already applied.
"""

import hashlib
from pathlib import Path

SQL = Path(__file__).resolve().parent.parent / "sql"


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
    revisions = {Path(path).parts[1].removesuffix(".json") for path in frozen()}
    files = {str(p.relative_to(SQL)) for rev in revisions for p in (SQL / "migrations" / rev).glob("*.sql")}
    files |= {f"releases/{rev}.json" for rev in revisions}
    assert files == set(frozen())
