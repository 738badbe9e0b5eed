"""A fresh install: head's schema in one pass, instead of replaying every revision.

Replaying the revisions from nothing (what `alembic upgrade head` does, and how
`vectorkeep schema record` records a release) applies each release's
definitions in turn, 24 of them, to reach the last. A database without
vectorkeep gets instead, in one transaction, stamped at head:

1. pgvector and the roles (the run-once files of 0001 and 0005, which do
   nothing where they exist);
2. sql/install/10_tables.sql: head's schemas, tables, constraints and indexes,
   written by `vectorkeep schema record` from head's recorded catalogue
   (tables_sql below);
3. the rest of sql/install/ but the seed: head's one type, dblink, the
   database's settings;
4. head's definitions (sql/definitions/), once;
5. sql/install/90_seed.sql: the default encoder and vk.documents.

tests/test_install.py holds both paths to one result: the same pg_dump of
schema and rows, and the catalogue recorded for head.
"""

import re
from typing import Any

import psycopg

from vectorkeep import sql
from vectorkeep.db import catalogue, definitions
from vectorkeep.db.catalogue import Catalogue, Release

TABLES_FILE = "install/10_tables.sql"
SEED_FILE = "install/90_seed.sql"
# Idempotent, self-contained run-once files of the revisions that brought them: they create what is missing.
_BEFORE_SCHEMA = ("migrations/0001_core/00_extension.sql", "migrations/0005_roles/10_roles.sql")

# The indexes each (collection, version) brings (13_indexes.sql): the seed's vk.attach writes the sample
# collection's, so they belong to no table's definition.
_COLLECTION_INDEX = re.compile(r"^index vk\.embeddings_c\d+_m\d+_")


def install(conn: psycopg.Connection) -> None:
    """Install head into a database without vectorkeep, inside the caller's transaction."""
    for path in _BEFORE_SCHEMA:
        definitions.run_file(conn, path)
    with catalogue.names_printed_for(conn, catalogue.vector_schema(conn)):
        for path in sql.install_files():
            if path != SEED_FILE:
                definitions.run_file(conn, path)
        definitions.apply_head(conn)
        definitions.run_file(conn, SEED_FILE)


def _columns(table: dict[str, Any]) -> list[str]:
    # The catalogue says IDENTITY for either kind; every identity column of vk's is GENERATED ALWAYS
    # (tests/test_install.py compares a fresh install with the revisions replayed).
    return [re.sub(r" IDENTITY$", " GENERATED ALWAYS AS IDENTITY", c) for c in table["columns"]]


def _is_foreign_key(constraint: str) -> bool:
    return " FOREIGN KEY " in constraint


def create_table(name: str, table: dict[str, Any], *, foreign_keys: bool = True) -> str:
    """CREATE TABLE with its columns and constraints (foreign keys too unless told not to)."""
    constraints = [c for c in table["constraints"] if foreign_keys or not _is_foreign_key(c)]
    items = [*_columns(table), *(f"CONSTRAINT {c}" for c in constraints)]
    lines = [f"CREATE TABLE {name} ("]
    lines += [f"    {item}{',' if i < len(items) - 1 else ''}" for i, item in enumerate(items)]
    return "\n".join([*lines, ");"])


def own_indexes(objects: Catalogue, name: str) -> list[str]:
    """CREATE INDEX of the table's indexes that no constraint of it makes and no collection brings."""
    table = objects[f"table {name}"]
    constraint_names = {c.split()[0] for c in table["constraints"]}
    return [
        str(props["definition"]) + ";"
        for key, props in sorted(objects.items())
        if key.startswith("index ")
        and f" ON {name} " in str(props.get("definition", ""))
        and not _COLLECTION_INDEX.match(key)
        and key.removeprefix("index vk.") not in constraint_names
    ]


def comments(name: str, table: dict[str, Any]) -> list[str]:
    out = []
    if table.get("comment"):
        out.append(f"COMMENT ON TABLE {name} IS {literal(table['comment'])};")
    for column, comment in sorted((table.get("column_comments") or {}).items()):
        out.append(f"COMMENT ON COLUMN {name}.{column} IS {literal(comment)};")
    return out


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def tables_sql(release: Release) -> str:
    """The text of sql/install/10_tables.sql for a release: its schemas, then its tables with their
    constraints (foreign keys once every table exists), indexes, row security and comments. Grants
    are 99_privileges.sql's; policies and triggers are definitions."""
    objects = catalogue.schema_objects(release.objects)
    tables = sorted(key.removeprefix("table ") for key in objects if key.startswith("table "))
    out = [
        "-- A fresh install's tables: head's schemas, tables, constraints, indexes, row",
        f"-- security and comments, as the revisions up to {release.revision} left them (sql/migrations/).",
        "-- Generated from sql/releases/" + release.revision + ".json by `vectorkeep schema record`:",
        "-- do not edit (tests/test_install.py fails when it is stale). Grants are",
        "-- sql/definitions/99_privileges.sql's; policies and triggers are definitions too.",
        "",
    ]
    for key, props in sorted(objects.items()):
        if key.startswith("schema "):
            schema = key.removeprefix("schema ")
            out.append(f"CREATE SCHEMA {schema};")
            if props.get("comment"):
                out.append(f"COMMENT ON SCHEMA {schema} IS {literal(props['comment'])};")
    for name in tables:
        table = objects[f"table {name}"]
        out += ["", create_table(name, table, foreign_keys=False), *own_indexes(objects, name)]
        if table.get("row_security"):
            out.append(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;")
        out += comments(name, table)
    out.append("")
    for name in tables:
        for constraint in objects[f"table {name}"]["constraints"]:
            if _is_foreign_key(constraint):
                out.append(f"ALTER TABLE {name} ADD CONSTRAINT {constraint};")
    return "\n".join(out) + "\n"
