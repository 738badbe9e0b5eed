"""`schema show|check|record`: the SQL as a DBA reads it, and drift in a live database."""

import argparse
import json
import sys

from vectorkeep.app import schema
from vectorkeep.cli.parsing import Commands, url


def cmd_show(args: argparse.Namespace) -> int:
    found = schema.show(args.name)
    if not found:
        print(f"error: no current definition of {args.name} in sql/definitions/, and no such table", file=sys.stderr)
        return 1
    for d in found:
        print(f"-- {d.path}{f':{d.line}' if d.line else ''}\n{d.text}\n")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    result = schema.check(url(args))
    if args.json:
        print(json.dumps({"revision": result.revision, "head": result.head, **result.drift.as_json()}, indent=2))
    else:
        if result.revision != result.head:
            print(f"database at revision {result.revision}; this vectorkeep's head is {result.head}")
        if result.drift:
            print(f"the schema differs from the catalogue of revision {result.revision}:")
            print("\n".join(result.drift.lines()))
        else:
            print(f"the schema matches the catalogue of revision {result.revision}")
    return 1 if result.drift else 0


def cmd_record(args: argparse.Namespace) -> int:
    for path in (schema.record_release(url(args)), schema.reference_path(), schema.tables_path()):
        print(f"wrote {path}")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    for path in schema.release(url(args)):
        print(f"wrote {path}")
    return 0


def register(commands: Commands) -> None:
    _, group = commands.group("schema", "Read the SQL's current definitions; check an installed schema for drift.")
    p = group.add(
        "show",
        cmd_show,
        "Print the current definition of a function, view or trigger (from sql/definitions/) or of a table "
        "(CREATE TABLE with its indexes, policies, triggers, comments and grants, from head's catalogue).",
        json_flag=False,
    )
    p.add_argument("name", help="e.g. vk.search, vk.status, vk.claim_v1, vk.embeddings")
    group.add(
        "check",
        cmd_check,
        "Compare the installed catalogue (functions and their security, search_path, comments, grants; views, "
        "triggers, tables) with the one recorded for its revision, and each collection's own objects (its "
        "versions' indexes, its trigger and expression functions, the triggers on its table) with what its "
        "collections call for; exit 1 on drift.",
    )
    group.add(
        "record",
        cmd_record,
        "Developers: replay every revision into a scratch database of this server and write head's catalogue "
        "(sql/releases/<head>.json), the SQL reference and a fresh install's tables (sql/install/10_tables.sql).",
        json_flag=False,
    )
    group.add(
        "release",
        cmd_release,
        "Developers: release the head revision: record its catalogue, keep today's statements beside it "
        "(sql/releases/<head>.queries.sql) and freeze its files (sql/frozen.txt).",
        json_flag=False,
    )
