"""Bring schema vk's definitions (functions, views, triggers, policies, comments, grants)
to what a release has, from that release's catalogue (sql/releases/*.json).

The head revision applies the readable files of sql/definitions/ instead; a
release's catalogue is what those files installed, frozen when the release
is out, so that installing an older revision, or downgrading to one, gives
exactly the schema that release had.
"""

import logging
from collections.abc import Iterable

import psycopg
from psycopg import sql

from vectorkeep.db import catalogue
from vectorkeep.db.catalogue import VECTOR_SCHEMA, Release
from vectorkeep.sql import query

log = logging.getLogger(__name__)

ROLES = ("vk_app", "vk_worker", "vk_admin")


def fill_vector_schema(text: str, schema: str) -> str:
    """The text with pgvector's schema in place of its token."""
    return text.replace(VECTOR_SCHEMA, schema)


def _name(key: str) -> str:
    """'function vk.search(text, …)' -> 'vk.search(text, …)'; 'view vk.status' -> 'vk.status'."""
    return key.split(" ", 1)[1]


def restore(conn: psycopg.Connection, release: Release, skip: Iterable[str] = ()) -> None:
    """Make the database's definitions those of `release` (tables and data are left alone).

    skip: keys of objects a revision's own run-once file creates.
    """
    schema = catalogue.vector_schema(conn)
    have = catalogue.read(conn)
    want = {key: props for key, props in release.objects.items() if key not in set(skip)}

    def run(text: str) -> None:
        conn.execute(fill_vector_schema(text, schema).encode())

    def drop(kind: str, name: str) -> None:
        # Names as the catalogue printed them: qualified and quoted already.
        conn.execute(sql.SQL("DROP {} {}").format(sql.SQL(kind), sql.SQL(name)))

    # Views and policies depend on functions: dropped first, created last.
    for key in (k for k in have if k.startswith("view ")):
        drop("VIEW", _name(key))
    for key in (k for k in have if k.startswith("policy ")):
        drop("POLICY", _name(key))
    for key in (k for k in have if k.startswith("trigger ") and k not in want):
        drop("TRIGGER", _name(key))
    # A function goes when the release lacks it, or has it with another result
    # or argument list (CREATE OR REPLACE cannot change those).
    doomed = {
        key
        for key, props in have.items()
        if key.startswith("function ")
        and (key not in want or (props["result"], props["arguments"]) != (want[key]["result"], want[key]["arguments"]))
    }
    for key in reversed(catalogue.function_order(conn)):
        if key in doomed:
            drop("FUNCTION", _name(key))
    checked = conn.execute(query("function_bodies_checked")).fetchone()
    conn.execute(query("check_function_bodies"), {"value": "off"})
    try:
        for key in release.function_order:
            if key in want:
                run(want[key]["definition"])
    finally:
        conn.execute(query("check_function_bodies"), {"value": checked[0] if checked else "on"})
    for kind in ("view ", "trigger ", "policy "):
        for key in sorted(k for k in want if k.startswith(kind)):
            run(want[key]["definition"])
    for key, props in sorted(want.items()):
        if key.startswith("table "):
            switch = "ENABLE" if props.get("row_security") else "DISABLE"
            conn.execute(sql.SQL("ALTER TABLE {} {} ROW LEVEL SECURITY").format(sql.SQL(_name(key)), sql.SQL(switch)))
    for key, props in sorted(want.items()):
        if key.startswith(("function ", "view ")):
            target = "FUNCTION" if key.startswith("function ") else "VIEW"
            conn.execute(
                sql.SQL("COMMENT ON {} {} IS {}").format(
                    sql.SQL(target), sql.SQL(_name(key)), sql.Literal(props.get("comment"))
                )
            )
    _restore_grants(conn, want)


def _restore_grants(conn: psycopg.Connection, want: catalogue.Catalogue) -> None:
    existing = [r for (r,) in conn.execute(query("existing_roles"), {"names": list(ROLES)})]
    grantees = sql.SQL(", ").join([sql.SQL("PUBLIC"), *map(sql.Identifier, existing)])
    for objects in ("ALL TABLES IN SCHEMA vk", "ALL SEQUENCES IN SCHEMA vk", "ALL FUNCTIONS IN SCHEMA vk", "SCHEMA vk"):
        conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.SQL(objects), grantees))
    for key, props in sorted(want.items()):
        kind = key.split(" ", 1)[0]
        target = {"function": "FUNCTION", "view": "TABLE", "table": "TABLE", "sequence": "SEQUENCE", "schema": "SCHEMA"}
        if kind not in target:
            continue
        for grant in props.get("grants", []):
            grantee, privilege = grant.split(":", 1)
            privilege, _, column = privilege.partition(" ")
            who = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)
            conn.execute(
                sql.SQL("GRANT {} {} ON {} {} TO {}").format(
                    sql.SQL(privilege), sql.SQL(column), sql.SQL(target[kind]), sql.SQL(_name(key)), who
                )
            )
