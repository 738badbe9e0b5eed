"""Released migrations are frozen: a change to their SQL belongs in a new revision.

sql/frozen.txt lists the sha256 of every file of a released revision. If this
test fails, write the change as a new revision (sql/000N_*/ + alembic/versions)
instead of editing a file that databases in the field have already applied.
"""

import hashlib
from pathlib import Path

SQL = Path(__file__).resolve().parent.parent / "sql"


def frozen() -> dict[str, str]:
    lines = (SQL / "frozen.txt").read_text().splitlines()
    return {path: digest for digest, path in (line.split() for line in lines if line and not line.startswith("#"))}


def test_released_migration_files_are_unchanged() -> None:
    recorded = frozen()
    assert recorded, "sql/frozen.txt lists no file"
    actual = {path: hashlib.sha256((SQL / path).read_bytes()).hexdigest() for path in recorded}
    changed = [f"{digest}  {path}" for path, digest in actual.items() if digest != recorded[path]]
    assert changed == [], "released migration SQL changed; new hashes:\n" + "\n".join(changed)


def test_every_file_of_a_released_revision_is_frozen() -> None:
    revisions = {path.split("/")[0] for path in frozen()}
    files = {str(p.relative_to(SQL)) for rev in revisions for p in (SQL / rev).glob("*.sql")}
    assert files == set(frozen())
