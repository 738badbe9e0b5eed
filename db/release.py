"""Record the head revision's catalogue: ``python -m vectorkeep.db.release``.

Installs head into a scratch database (on the server of VECTORKEEP_DATABASE_URL,
or the embedded one), reads its catalogue and writes
sql/releases/<head>.json, which downgrades and ``vectorkeep schema check``
read. Run it when a revision is ready; tests/test_migrations.py fails while
the file and a fresh install differ.
"""

import argparse
import os
from pathlib import Path

import psycopg
from psycopg.sql import SQL, Identifier

from vectorkeep import sql
from vectorkeep.db import migrate, settings
from vectorkeep.db.catalogue import Release
from vectorkeep.db.connect import connect


def record(server_url: str) -> Path:
    head = migrate.head_revision()
    assert head is not None
    scratch = f"vk_release_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(SQL("CREATE DATABASE {}").format(Identifier(scratch)))
    try:
        url = settings.url_with_database(server_url, scratch)
        migrate.upgrade(url)
        with connect(url, autocommit=True) as conn:
            text = Release.of(conn, head).dumps()
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(Identifier(scratch)))
    path = Path(sql.__file__).parent / sql.release_file(head)
    path.write_text(text, encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a server URL (default: VECTORKEEP_DATABASE_URL or the embedded server)")
    args = parser.parse_args()
    print(record(args.url or settings.database_url()))


if __name__ == "__main__":
    main()
