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

from vectorkeep import sql as files
from vectorkeep.db import catalogue, kinds
from vectorkeep.db.catalogue import VECTOR_SCHEMA, Release
from vectorkeep.sql import query

log = logging.getLogger(__name__)

ROLES = ("vk_app", "vk_worker", "vk_admin")


def fill_vector_schema(text: str, schema: str) -> str:
    """The text with pgvector's schema in place of its token."""
    return text.replace(VECTOR_SCHEMA, schema)


def run_file(conn: psycopg.Connection, relative_path: str) -> None:
    """Run one file of sql/ in the connection's transaction.

    The text goes to psycopg with no parameters, so it is sent as written (no placeholder
    parsing of '%' or ':name'); only "@extschema:vector@" is replaced by pgvector's schema.
    """
    text = files.read(relative_path)
    if VECTOR_SCHEMA in text:
        text = fill_vector_schema(text, catalogue.vector_schema(conn))
    conn.execute(text.encode())


def apply_head(conn: psycopg.Connection) -> None:
    """Head's definitions: the files of sql/definitions/ in order, and the registry's model kinds
    (vk.model_kinds, which head's SQL reads roles from). Names print as catalogue.names_printed_for
    has them: the caller sets that."""
    for path in files.definition_files():
        run_file(conn, path)
    kinds.sync(conn)


def _name(key: str) -> str:
    """'function vk.search(text, …)' -> 'vk.search(text, …)'; 'view vk.status' -> 'vk.status'."""
    return key.split(" ", 1)[1]


class _Batch:
    """Statements sent to the server together, in order, in one round trip: a restore runs
    thousands (each grant is one), and one at a time they cost seconds in every install."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.statements: list[str] = []

    def add(self, statement: str | sql.Composable) -> None:
        self.statements.append(statement if isinstance(statement, str) else statement.as_string(self.conn))

    def send(self) -> None:
        if self.statements:
            self.conn.execute(";\n".join(self.statements).encode())
            self.statements = []


def restore(conn: psycopg.Connection, release: Release, skip: Iterable[str] = ()) -> None:
    """Make the database's definitions those of `release` (tables and data are left alone).

    skip: keys of objects a revision's own run-once file creates.
    """
    schema = catalogue.vector_schema(conn)
    have = catalogue.read(conn)
    want = {key: props for key, props in release.objects.items() if key not in set(skip)}
    batch = _Batch(conn)

    def run(text: str) -> None:
        # Without the column lists the recording server printed after a function in FROM (release 0015's
        # vk._backend_alive names 31 columns of pg_stat_get_activity, PostgreSQL 15 and 16 have 30).
        batch.add(fill_vector_schema(catalogue.comparable_definition(text), schema))

    def drop(kind: str, name: str) -> None:
        # Names as the catalogue printed them: qualified and quoted already.
        batch.add(sql.SQL("DROP {} {}").format(sql.SQL(kind), sql.SQL(name)))

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
    batch.send()
    checked = conn.execute(query("function_bodies_checked")).fetchone()
    conn.execute(query("check_function_bodies"), {"value": "off"})
    try:
        for key in release.function_order:
            if key in want:
                run(want[key]["definition"])
        batch.send()
    finally:
        conn.execute(query("check_function_bodies"), {"value": checked[0] if checked else "on"})
    for kind in ("view ", "trigger ", "policy "):
        for key in sorted(k for k in want if k.startswith(kind)):
            run(want[key]["definition"])
    for key, props in sorted(want.items()):
        if key.startswith("table "):
            switch = "ENABLE" if props.get("row_security") else "DISABLE"
            batch.add(sql.SQL("ALTER TABLE {} {} ROW LEVEL SECURITY").format(sql.SQL(_name(key)), sql.SQL(switch)))
    for key, props in sorted(want.items()):
        if key.startswith(("function ", "view ")):
            target = "FUNCTION" if key.startswith("function ") else "VIEW"
            batch.add(
                sql.SQL("COMMENT ON {} {} IS {}").format(
                    sql.SQL(target), sql.SQL(_name(key)), sql.Literal(props.get("comment"))
                )
            )
    batch.send()
    # Grants of privileges the server lacks (a release recorded on a newer PostgreSQL) are left out.
    _restore_grants(conn, catalogue.for_server(want, conn.info.server_version))


# vk's functions whose SQL-standard bodies use the row type of one of the tables (an argument, a result
# or a whole-row value of it): their definitions and bodies.
_ROW_TYPE_USERS = """
SELECT DISTINCT p.oid::regprocedure::text, pg_get_functiondef(p.oid), pg_get_function_sqlbody(p.oid)
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_type'::regclass
JOIN pg_type t ON t.oid = d.refobjid
WHERE p.pronamespace = 'vk'::regnamespace AND p.prosqlbody IS NOT NULL AND t.typrelid = ANY(%(tables)s::regclass[])
ORDER BY 1
"""

_STANDIN_QUOTE = "$vk_standin$"


def standin(definition: str, body: str) -> str:
    """A function's CREATE OR REPLACE with its SQL-standard body (pg_get_function_sqlbody) as a string
    body: the same statements, parsed when called rather than kept as a parse tree."""
    at = definition.rfind(body)
    if at < 0:
        raise RuntimeError(f"the body of this definition is not where it should be:\n{definition}")
    statements = body.strip()
    if statements.startswith("RETURN"):
        statements = "SELECT " + statements.removeprefix("RETURN").strip()
    elif statements.startswith("BEGIN ATOMIC") and statements.endswith("END"):
        statements = statements.removeprefix("BEGIN ATOMIC").removesuffix("END").strip()
    else:
        raise RuntimeError(f"not a SQL-standard body: {body}")
    return f"{definition[:at]}AS {_STANDIN_QUOTE}\n{statements}\n{_STANDIN_QUOTE}\n"


def loosen_row_type_users(conn: psycopg.Connection, *tables: str) -> list[str]:
    """Give vk's functions whose SQL-standard bodies use the row type of one of the tables string bodies of
    the same statements (stand-ins); their names.

    PostgreSQL 15 (15.20; not 18) refuses ALTER TABLE ... ADD COLUMN ... DEFAULT on a table while a
    SQL-standard function body uses its row type ("cannot alter table ... because function ... uses its row
    type"), and a string body keeps no such dependency. A revision calls this before its run-once file
    changes those tables; the definitions it applies next create the functions again, bodies and all (the
    run-once file may drop some: they still exist, with the same signatures, comments, owner and grants).
    Done on every server alike, so that the path is the same everywhere."""
    if conn.info.server_version < 140000:  # no SQL-standard bodies before 14
        return []
    users = conn.execute(_ROW_TYPE_USERS, {"tables": list(tables)}).fetchall()
    for _, definition, body in users:
        conn.execute(standin(definition, body).encode())
    return [name for name, _, _ in users]


def _restore_grants(conn: psycopg.Connection, want: catalogue.Catalogue) -> None:
    existing = [r for (r,) in conn.execute(query("existing_roles"), {"names": list(ROLES)})]
    grantees = sql.SQL(", ").join([sql.SQL("PUBLIC"), *map(sql.Identifier, existing)])
    batch = _Batch(conn)
    for objects in ("ALL TABLES IN SCHEMA vk", "ALL SEQUENCES IN SCHEMA vk", "ALL FUNCTIONS IN SCHEMA vk", "SCHEMA vk"):
        batch.add(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.SQL(objects), grantees))
    for key, props in sorted(want.items()):
        kind = key.split(" ", 1)[0]
        target = {"function": "FUNCTION", "view": "TABLE", "table": "TABLE", "sequence": "SEQUENCE", "schema": "SCHEMA"}
        if kind not in target:
            continue
        for grant in props.get("grants", []):
            grantee, privilege = grant.split(":", 1)
            privilege, _, column = privilege.partition(" ")
            who = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)
            batch.add(
                sql.SQL("GRANT {} {} ON {} {} TO {}").format(
                    sql.SQL(privilege), sql.SQL(column), sql.SQL(target[kind]), sql.SQL(_name(key)), who
                )
            )
    batch.send()
