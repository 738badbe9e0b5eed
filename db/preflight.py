"""What `vectorkeep migrate` needs of the server and of the role that runs it, checked before it changes anything.

`run(conn)` reads the catalogue and changes nothing; the one thing it does besides reading is try the
loopback of text queries (dblink opens a connection to this database, runs SELECT 1 and closes it).
Each check is ok; warn (migrate succeeds, but something will not work, or work less well, until someone
acts); or fail (migrate would fail, and roll back, saying only which statement was refused). A warn or
fail says what to do and who does it, with the exact SQL where there is some.

What needs which right comes from the migrations themselves:

- pgvector: 0001_core creates it where missing, which takes a superuser unless an administrator did;
- schemas vk (0001_core), vk_expr (0010_security) and vk_dblink (0011_search, where dblink is missing):
  CREATE on the database; those that exist must be the role's own (or a role it is a member of);
- alembic_version: alembic creates it in the first schema of the search_path;
- vk_app, vk_worker, vk_admin (0005_roles): created where missing, which takes CREATEROLE; making login
  roles members of them takes ADMIN OPTION on them from PostgreSQL 16 on;
- pgvector's schema: nobody else may create objects there (sql/definitions/00_schema_safety.sql);
- dblink (installed by 0011_search where the role may) and the loopback (vk._embed_link): text queries only;
- client_connection_check_interval: set by 0015_safety where the role owns the database.
"""

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from vectorkeep.db import migrate, probes
from vectorkeep.sql import query

Status = Literal["ok", "warn", "fail"]

TESTED_SERVERS = (15, 18)  # PostgreSQL majors, first and last
OLDEST_PGVECTOR = (0, 7)
ITERATIVE_SCANS = (0, 8)  # pgvector's iterative index scans (filtered search)
GROUP_ROLES = ("vk_app", "vk_worker", "vk_admin")
LOOPBACK_SERVER = "vk_loopback"
DBLINK_SCHEMA = "vk_dblink"
# The revision that creates each of vectorkeep's schemas (vk_dblink only where dblink is missing).
SCHEMA_CREATED_BY = {"vk": "0001_core", "vk_expr": "0010_security", DBLINK_SCHEMA: "0011_search"}
DBLINK_REVISION = "0011_search"
CHECK_INTERVAL_REVISION = "0015_safety"
# What a suggested user mapping carries in place of the password, which only its owner knows.
PASSWORD_PLACEHOLDER = "<password>"
APPLICATION_NAME = "vectorkeep preflight"


@dataclass(frozen=True)
class Check:
    """One requirement: what was found, and for warn and fail what to do (sql: the statements, in order)."""

    name: str
    status: Status
    found: str
    fix: str = ""
    sql: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    role: str
    database: str
    server_version: str
    pgvector_version: str | None  # installed; None when it is not (yet)
    pgvector_available: str | None  # what CREATE EXTENSION would install
    dblink_schema: str | None
    revision: str | None  # the database's alembic revision (None: never migrated, or unreadable)
    target: str | None  # the revision migrate goes to
    pending: list[str]  # the revisions migrate would apply
    checks: list[Check]

    @property
    def passed(self) -> bool:
        """Whether migrate may run: no check failed (warnings allowed)."""
        return not self.failures

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    def as_json(self) -> dict[str, Any]:
        return {"passed": self.passed, **asdict(self)}


# What the named queries return (sql/queries.sql, preflight_*).


@dataclass(frozen=True)
class _Role:
    server_version: str
    server_version_num: int
    role_name: str
    database: str
    database_owner: str
    superuser: bool
    createrole: bool
    owns_database: bool
    create_on_database: bool
    default_schema: str | None
    create_on_default_schema: bool
    connection_check_interval: str | None


@dataclass(frozen=True)
class _Extension:
    installed: str | None
    schema: str | None
    usable: bool
    available: str | None
    trusted: bool

    def creatable_by(self, role: _Role) -> bool:
        """Whether the role may CREATE EXTENSION it (a trusted one takes CREATE on the database)."""
        return self.available is not None and (role.superuser or (self.trusted and role.create_on_database))


@dataclass(frozen=True)
class _Schema:
    name: str
    present: bool
    owner: str | None
    owned: bool


@dataclass(frozen=True)
class _GroupRole:
    name: str
    present: bool
    admin_option: bool


@dataclass(frozen=True)
class _Loopback:
    owner: str
    server_present: bool
    server_usage: bool
    mapping_present: bool
    options_visible: bool
    mapping_has_password: bool
    may_create_server: bool
    server_address: str | None
    port: str
    socket_conninfo: str | None


def run(conn: psycopg.Connection, target: str | None = None) -> Report:
    """Every check, for an upgrade to `target` (None or "head": the newest revision). conn: autocommit, as
    the role that will migrate."""
    with conn.cursor(row_factory=class_row(_Role)) as cur:
        role = cur.execute(query("preflight_role")).fetchone()
    assert role is not None, "the role and database of a session always exist"
    vector, dblink = _extension(conn, "vector"), _extension(conn, "dblink")
    revision_check, current, goal, pending = _revision(conn, role, target)
    group_roles = _group_roles(conn)
    checks = [
        _server(role),
        _role(role),
        _pgvector(role, vector),
        _pgvector_schema(conn, role, vector),
        revision_check,
        _schemas(conn, role, dblink, pending),
        _roles(conn, role, group_roles),
        _memberships(conn, role, group_roles),
        _dblink(conn, role, dblink, pending),
        _loopback(conn, role, dblink),
        _disconnect_check(conn, role, pending),
    ]
    return Report(
        role=role.role_name,
        database=role.database,
        server_version=role.server_version,
        pgvector_version=vector.installed,
        pgvector_available=vector.available,
        dblink_schema=dblink.schema,
        revision=current,
        target=goal,
        pending=pending,
        checks=checks,
    )


def _extension(conn: psycopg.Connection, name: str) -> _Extension:
    with conn.cursor(row_factory=class_row(_Extension)) as cur:
        found = cur.execute(query("preflight_extension"), {"name": name}).fetchone()
    assert found is not None, "the query returns one row for any name"
    return found


def _statement(conn: psycopg.Connection, template: str, *parts: sql.Composable) -> str:
    """A statement to print (never run here), its identifiers and literals quoted by psycopg."""
    return sql.SQL(template).format(*parts).as_string(conn) + ";"


def _version(text: str) -> tuple[int, int]:
    """'0.8.1' -> (0, 8)."""
    match = re.match(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _names(items: list[str]) -> str:
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)


def _server(role: _Role) -> Check:
    major = role.server_version_num // 10000
    first, last = TESTED_SERVERS
    if major < first:
        return Check(
            "server",
            "fail",
            f"PostgreSQL {role.server_version}: vectorkeep needs {first} or newer",
            f"upgrade the server ({first} to {last} are tested)",
        )
    if major > last:
        return Check(
            "server",
            "warn",
            f"PostgreSQL {role.server_version}, newer than those tested ({first} to {last})",
            "migrate should work; report what does not",
        )
    return Check("server", "ok", f"PostgreSQL {role.server_version} ({first} to {last} are tested)")


def _role(role: _Role) -> Check:
    """What the role is: no requirement of its own (the checks below say what each right is for)."""
    if role.superuser:
        return Check("role", "ok", f"{role.role_name}: superuser")

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    owner = "" if role.owns_database else f" (owner: {role.database_owner})"
    return Check(
        "role",
        "ok",
        f"{role.role_name}: not a superuser; CREATEROLE: {yes(role.createrole)}; owns database {role.database}: "
        f"{yes(role.owns_database)}{owner}; CREATE on it: {yes(role.create_on_database)}",
    )


def _pgvector(role: _Role, vector: _Extension) -> Check:
    tested = "0.7 and 0.8 are tested"
    slower = (
        "which has no iterative index scans: a search with a broad filter keeps the matches among the HNSW "
        "index's ef_search nearest (lower recall; exact when fewer than k match)"
    )
    available = _version(vector.available) if vector.available else None
    if vector.installed is not None:
        where = f"pgvector {vector.installed} in schema {vector.schema}"
        installed = _version(vector.installed)
        if installed >= ITERATIVE_SCANS:
            return Check("pgvector", "ok", f"{where} ({tested})")
        # An older one: updated in place where the server has a newer one (its owner or an administrator runs it).
        update = ("ALTER EXTENSION vector UPDATE;",)
        first = "" if available and available > installed else "install pgvector 0.8 on the server, then "
        if installed < OLDEST_PGVECTOR:
            fix = f"{first}update it, in database {role.database} ({tested}):"
            return Check("pgvector", "fail", f"{where}; vectorkeep needs 0.7 or newer", fix, update)
        return Check("pgvector", "warn", f"{where}, {slower}", f"{first}update it, for iterative scans:", update)
    if available is None:
        return Check(
            "pgvector",
            "fail",
            "pgvector is not installed on this server",
            f"install pgvector 0.8 on the server (e.g. the package postgresql-{role.server_version_num // 10000}-"
            f"pgvector; {tested}), then have an administrator run, in database {role.database}:",
            ("CREATE EXTENSION vector;",),
        )
    if available < OLDEST_PGVECTOR:
        return Check(
            "pgvector",
            "fail",
            f"the server has pgvector {vector.available}; vectorkeep needs 0.7 or newer",
            f"install pgvector 0.8 on the server ({tested})",
        )
    if not vector.creatable_by(role):
        return Check(
            "pgvector",
            "fail",
            f"pgvector is not installed in database {role.database}, and {role.role_name} may not create it "
            "(it takes a superuser)",
            f"ask an administrator to run, in database {role.database} (on a managed service, its administrator "
            "role, such as rds_superuser or azure_pg_admin, may):",
            ("CREATE EXTENSION vector;",),
        )
    if available < ITERATIVE_SCANS:
        return Check(
            "pgvector",
            "warn",
            f"not installed yet: migrate creates pgvector {vector.available}, {slower}",
            f"install pgvector 0.8 on the server for iterative scans ({tested})",
        )
    return Check("pgvector", "ok", f"not installed yet: migrate creates pgvector {vector.available} ({tested})")


def _pgvector_schema(conn: psycopg.Connection, role: _Role, vector: _Extension) -> Check:
    """Owner-run functions search pgvector's schema: nobody else may create objects there."""
    schema = vector.schema or role.default_schema
    if schema is None:
        return Check("pgvector-schema", "ok", "no schema to check: the search_path names none that exists")
    where = f"schema {schema}, where pgvector {'is' if vector.installed else 'will be created'}"
    creators = [c for (c,) in conn.execute(query("preflight_schema_creators"), {"schema": schema}).fetchall()]
    if not creators:
        return Check("pgvector-schema", "ok", f"only vk's owner and superusers may create objects in {where}")
    move = (
        ("CREATE SCHEMA vector_ext;", "ALTER EXTENSION vector SET SCHEMA vector_ext;")
        if vector.installed
        else ("CREATE SCHEMA vector_ext;", "CREATE EXTENSION vector SCHEMA vector_ext;")
    )
    revoke = _statement(
        conn,
        "REVOKE CREATE ON SCHEMA {} FROM {}",
        sql.Identifier(schema),
        sql.SQL(", ").join(sql.SQL("PUBLIC") if c == "PUBLIC" else sql.Identifier(c) for c in creators),
    )
    return Check(
        "pgvector-schema",
        "fail",
        f"{_names(creators)} may create objects in {where}: vectorkeep's owner-run functions search it, so "
        "they could run that code as vk's owner, and the upgrade refuses",
        "take the right back (the first statement), or have an administrator put pgvector in a schema only its "
        "owner writes (the others):",
        (revoke, *move),
    )


def _revision(
    conn: psycopg.Connection, role: _Role, target: str | None
) -> tuple[Check, str | None, str | None, list[str]]:
    """The check, the database's revision, the revision migrate goes to, and the revisions it would apply."""
    revisions = migrate.revisions()
    goal = migrate.head_revision() if target in (None, "head") else target
    if goal not in revisions:
        return Check("revision", "fail", f"{goal} is no revision of this vectorkeep"), None, goal, []
    try:
        current = probes.alembic_revision(conn)
    except psycopg.errors.InsufficientPrivilege:
        unreadable = Check(
            "revision",
            "fail",
            f"{role.role_name} may not read alembic_version",
            "migrate as the role that owns schema vk (see schemas)",
        )
        return unreadable, None, goal, []
    upto = revisions.index(goal) + 1
    if current is None:
        pending = revisions[:upto]
        if role.default_schema is None:
            return (
                Check(
                    "revision",
                    "fail",
                    "not migrated yet, and the search_path names no schema that exists, where alembic would "
                    "create alembic_version",
                    'set a search_path whose first schema exists (the default: "$user", public)',
                ),
                None,
                goal,
                pending,
            )
        if not role.create_on_default_schema:
            grant = _statement(
                conn,
                "GRANT CREATE ON SCHEMA {} TO {}",
                sql.Identifier(role.default_schema),
                sql.Identifier(role.role_name),
            )
            return (
                Check(
                    "revision",
                    "fail",
                    f"not migrated yet, and {role.role_name} may not create alembic_version (where alembic records "
                    f"the revision) in schema {role.default_schema}",
                    f"ask the schema's owner or an administrator (on PostgreSQL 15 and later, schema public is the "
                    f"database owner's, {role.database_owner}):",
                    (grant,),
                ),
                None,
                goal,
                pending,
            )
        applies = f"{len(pending)} revisions ({pending[0]} to {pending[-1]})" if len(pending) > 1 else pending[0]
        return Check("revision", "ok", f"not migrated yet: migrate applies {applies}"), None, goal, pending
    if current not in revisions:
        ahead = Check(
            "revision",
            "fail",
            f"at revision {current}, which this vectorkeep does not know: a newer release migrated it",
            "upgrade vectorkeep on this machine",
        )
        return ahead, current, goal, []
    pending = revisions[revisions.index(current) + 1 : upto]
    if not pending:
        return Check("revision", "ok", f"at revision {current}: nothing to apply"), current, goal, []
    applies = f"{len(pending)} revisions ({pending[0]} to {pending[-1]})" if len(pending) > 1 else pending[0]
    return Check("revision", "ok", f"at revision {current}: migrate applies {applies}"), current, goal, pending


def _schemas(conn: psycopg.Connection, role: _Role, dblink: _Extension, pending: list[str]) -> Check:
    """The schemas migrate creates need CREATE on the database; those it changes must be the role's own."""
    with conn.cursor(row_factory=class_row(_Schema)) as cur:
        schemas = cur.execute(query("preflight_schemas"), {"names": list(SCHEMA_CREATED_BY)}).fetchall()
    found: list[str] = []
    problems: list[str] = []
    fixes: list[str] = []
    statements: list[str] = []
    to_create: list[str] = []
    for s in schemas:
        created_by = SCHEMA_CREATED_BY[s.name]
        if s.name == DBLINK_SCHEMA and (dblink.installed or created_by not in pending):
            continue  # migrate neither creates nor changes it: it only calls dblink, wherever that is
        if created_by in pending:
            if not s.present:
                to_create.append(s.name)
                continue
            problems.append(f"schema {s.name} exists already, and revision {created_by} creates it")
            if s.name == DBLINK_SCHEMA:
                fixes.append("install dblink there (an administrator), or drop the schema if it is empty")
                statements += ["CREATE EXTENSION dblink SCHEMA vk_dblink;"]
            else:
                fixes.append(f"drop what an earlier install left ({s.name}), or migrate another database")
        elif not s.present:
            problems.append(f"schema {s.name} is missing, though the database is past revision {created_by}")
            fixes.append("restore the database from a backup")
        elif not s.owned:
            problems.append(f"schema {s.name} belongs to {s.owner}")
            fixes.append(f"migrate as {s.owner}, or ask an administrator to make {role.role_name} a member of it")
            statements.append(
                _statement(conn, "GRANT {} TO {}", sql.Identifier(s.owner or ""), sql.Identifier(role.role_name))
            )
        else:
            found.append(f"{s.name} (owner {s.owner})")
    if to_create:
        if role.create_on_database:
            found.insert(0, f"migrate creates {_names(to_create)}")
        else:
            problems.append(
                f"{role.role_name} may not create schemas ({_names(to_create)}) in database {role.database}"
            )
            fixes.append(f"ask the database's owner ({role.database_owner}) or an administrator")
            statements.append(
                _statement(
                    conn,
                    "GRANT CREATE ON DATABASE {} TO {}",
                    sql.Identifier(role.database),
                    sql.Identifier(role.role_name),
                )
            )
    if problems:
        fix = "; ".join(fixes) + (":" if statements else "")
        return Check("schemas", "fail", "; ".join(problems), fix, tuple(statements))
    return Check("schemas", "ok", "; ".join(found) or "nothing to create")


def _group_roles(conn: psycopg.Connection) -> list[_GroupRole]:
    with conn.cursor(row_factory=class_row(_GroupRole)) as cur:
        return cur.execute(query("preflight_group_roles")).fetchall()


def _roles(conn: psycopg.Connection, role: _Role, group_roles: list[_GroupRole]) -> Check:
    missing = [g.name for g in group_roles if not g.present]
    if not missing:
        return Check("group-roles", "ok", f"{_names(list(GROUP_ROLES))} exist")
    if role.superuser or role.createrole:
        return Check("group-roles", "ok", f"migrate creates {_names(missing)}")
    names = [sql.Identifier(name) for name in missing]
    return Check(
        "group-roles",
        "fail",
        f"{_names(missing)} do{'es' * (len(missing) == 1)} not exist, and {role.role_name} may not create roles "
        "(no CREATEROLE)",
        f"ask an administrator to create {'it' if len(missing) == 1 else 'them'} and to let {role.role_name} make "
        "login roles members:",
        (
            *(_statement(conn, "CREATE ROLE {} NOLOGIN", name) for name in names),
            _statement(
                conn, "GRANT {} TO {} WITH ADMIN OPTION", sql.SQL(", ").join(names), sql.Identifier(role.role_name)
            ),
        ),
    )


def _memberships(conn: psycopg.Connection, role: _Role, group_roles: list[_GroupRole]) -> Check:
    """Whether the role can make applications' and workers' login roles members of vectorkeep's groups
    (GRANT vk_app TO app_login): not migrate's business, but the next thing it is for."""
    groups = _names(list(GROUP_ROLES))
    if role.superuser:
        return Check("memberships", "ok", f"{role.role_name} may make login roles members of {groups} (superuser)")
    if role.server_version_num < 160000 and role.createrole:
        return Check(
            "memberships",
            "ok",
            f"{role.role_name} may make login roles members of {groups} (CREATEROLE, on PostgreSQL 15)",
        )
    # From PostgreSQL 16 on, a role gets ADMIN OPTION on the roles it creates; a missing group it may not create
    # is the group-roles check's failure, whose fix grants ADMIN OPTION too.
    lacking = [g.name for g in group_roles if g.present and not g.admin_option]
    if not lacking:
        return Check(
            "memberships",
            "ok",
            f"{role.role_name} may make login roles members of {groups} (ADMIN OPTION, or it creates them)",
        )
    return Check(
        "memberships",
        "warn",
        f"{role.role_name} may not make login roles members of {_names(lacking)}: from PostgreSQL 16 on that takes "
        "ADMIN OPTION on the group (CREATEROLE gives it only on roles one creates)",
        f"ask an administrator to give {role.role_name} ADMIN OPTION (or to grant each login role its membership: "
        "GRANT vk_app TO app_login;):",
        (
            _statement(
                conn,
                "GRANT {} TO {} WITH ADMIN OPTION",
                sql.SQL(", ").join(sql.Identifier(name) for name in lacking),
                sql.Identifier(role.role_name),
            ),
        ),
    )


def _dblink_setup(conn: psycopg.Connection, role: _Role) -> tuple[str, ...]:
    """How an administrator installs dblink for vectorkeep (README, "Text queries"): in a schema of its own that
    only vk's owner uses."""
    setup = (
        f"CREATE SCHEMA {DBLINK_SCHEMA};",
        f"REVOKE ALL ON SCHEMA {DBLINK_SCHEMA} FROM PUBLIC;",
        f"CREATE EXTENSION dblink SCHEMA {DBLINK_SCHEMA};",
    )
    if role.superuser:
        return setup
    return (
        *setup,
        _statement(
            conn, "GRANT USAGE ON SCHEMA {} TO {}", sql.Identifier(DBLINK_SCHEMA), sql.Identifier(role.role_name)
        ),
    )


def _dblink(conn: psycopg.Connection, role: _Role, dblink: _Extension, pending: list[str]) -> Check:
    """Text queries (vk.embed, search by text) carry their request out of the caller's transaction with dblink;
    without it they answer 0A000, and everything else works."""
    without = "text queries (vk.embed, search by text) answer 0A000 until it is; searches with vectors work"
    if dblink.installed is not None:
        where = f"dblink {dblink.installed} in schema {dblink.schema}"
        if role.superuser or dblink.usable:
            return Check("dblink", "ok", where)
        return Check(
            "dblink",
            "warn",
            f"{where}, which {role.role_name} may not use: text queries, which call it as vk's owner, fail with "
            f"'permission denied for schema {dblink.schema}'",
            "ask an administrator:",
            (
                _statement(
                    conn,
                    "GRANT USAGE ON SCHEMA {} TO {}",
                    sql.Identifier(dblink.schema or ""),
                    sql.Identifier(role.role_name),
                ),
            ),
        )
    if dblink.available is None:
        return Check(
            "dblink",
            "warn",
            f"dblink is not available on this server (one of PostgreSQL's contrib modules): {without}",
            "install the server's contrib modules, then have an administrator run, in database " + role.database + ":",
            _dblink_setup(conn, role),
        )
    if dblink.creatable_by(role):
        if DBLINK_REVISION in pending:
            return Check(
                "dblink",
                "ok",
                f"not installed yet: migrate installs dblink {dblink.available} in schema {DBLINK_SCHEMA}",
            )
        return Check(
            "dblink",
            "warn",
            f"dblink is not installed (revision {DBLINK_REVISION} installs it, and this database is past it): "
            f"{without}",
            f"install it, in database {role.database}:",
            _dblink_setup(conn, role),
        )
    return Check(
        "dblink",
        "warn",
        f"dblink is not installed, and {role.role_name} may not install it (it takes a superuser): {without}",
        f"ask an administrator to run, in database {role.database}:",
        _dblink_setup(conn, role),
    )


def _loopback(conn: psycopg.Connection, role: _Role, dblink: _Extension) -> Check:
    """How text queries connect back to this database as vk's owner (vk._embed_link): a superuser over the Unix
    socket with dblink_connect_u, anyone through the foreign server vk_loopback when it exists; a role that is no
    superuser only through it, with a user mapping that carries a password. Tried where dblink is there to try it."""
    with conn.cursor(row_factory=class_row(_Loopback)) as cur:
        loop = cur.execute(query("preflight_loopback"), {"application_name": APPLICATION_NAME}).fetchone()
    assert loop is not None, "the query returns one row"
    owner = sql.Identifier(loop.owner)
    # As vk's owner: the role itself, unless vk exists and belongs to another (the schemas check says so).
    as_superuser = role.superuser and loop.owner == role.role_name
    mapping = _statement(
        conn,
        "CREATE USER MAPPING FOR {} SERVER {} OPTIONS (user {}, password {})",
        owner,
        sql.Identifier(LOOPBACK_SERVER),
        sql.Literal(loop.owner),
        sql.Literal(PASSWORD_PLACEHOLDER),
    )
    password = f"{PASSWORD_PLACEHOLDER} is {loop.owner}'s password"
    problems: list[str] = []
    statements: list[str] = []
    if loop.server_present:
        described = f"through the foreign server {LOOPBACK_SERVER}"
        if not loop.server_usage:
            problems.append(f"{loop.owner} may not use the server {LOOPBACK_SERVER}")
            statements.append(
                _statement(conn, "GRANT USAGE ON FOREIGN SERVER {} TO {}", sql.Identifier(LOOPBACK_SERVER), owner)
            )
        if not loop.mapping_present:
            problems.append(f"{loop.owner} has no user mapping for {LOOPBACK_SERVER}")
            statements.append(mapping)
        elif loop.options_visible and not loop.mapping_has_password and not as_superuser:
            problems.append(
                f"{loop.owner}'s user mapping for {LOOPBACK_SERVER} has no password, and dblink lets a role that is "
                "no superuser connect only with one"
            )
            statements.append(
                _statement(
                    conn,
                    "ALTER USER MAPPING FOR {} SERVER {} OPTIONS (ADD password {})",
                    owner,
                    sql.Identifier(LOOPBACK_SERVER),
                    sql.Literal(PASSWORD_PLACEHOLDER),
                )
            )
        if problems:
            who = (
                f"as {loop.owner}" if loop.server_usage else f"ask {LOOPBACK_SERVER}'s owner or an administrator to run"
            )
            return Check(
                "loopback",
                "warn",
                "; ".join(problems) + ": text queries cannot connect back",
                f"{who} ({password}):",
                tuple(statements),
            )
        target = LOOPBACK_SERVER
    elif as_superuser and loop.socket_conninfo is not None:
        described = "over the Unix socket, as a superuser (dblink_connect_u)"
        target = loop.socket_conninfo
    else:
        create_server = _statement(
            conn,
            "CREATE SERVER {} FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host {}, port {}, dbname {})",
            sql.Identifier(LOOPBACK_SERVER),
            sql.Literal(loop.server_address or "localhost"),
            sql.Literal(loop.port),
            sql.Literal(role.database),
        )
        grant = _statement(conn, "GRANT USAGE ON FOREIGN SERVER {} TO {}", sql.Identifier(LOOPBACK_SERVER), owner)
        why = (
            "this server has no Unix socket for a superuser's loopback"
            if as_superuser
            else f"{loop.owner} is no superuser, so text queries connect back only through a foreign server "
            f"{LOOPBACK_SERVER} with a user mapping that carries a password"
        )
        who = (
            f"as {loop.owner} (it may use dblink_fdw)"
            if loop.may_create_server
            else "ask an administrator to run (or to GRANT USAGE ON FOREIGN DATA WRAPPER dblink_fdw TO "
            f"{loop.owner}, who then runs them)"
        )
        once = ", once dblink is installed" if dblink.installed is None else ""
        return Check(
            "loopback",
            "warn",
            f"no {LOOPBACK_SERVER}: {why}; text queries fail until it exists",
            f"{who}{once}; host and port: where this server is reached from itself; {password}:",
            (create_server, *(() if loop.may_create_server else (grant,)), mapping),
        )
    if dblink.installed is None:
        return Check(
            "loopback", "ok", f"text queries will connect back {described}; not tried: dblink is not installed yet"
        )
    if loop.owner != role.role_name:
        untried = f"they connect as {loop.owner}, not as {role.role_name}"
        return Check("loopback", "ok", f"text queries will connect back {described}; not tried: {untried}")
    if not (role.superuser or dblink.usable):
        untried = f"{role.role_name} may not use dblink (see dblink)"
        return Check("loopback", "ok", f"text queries will connect back {described}; not tried: {untried}")
    try:
        conn.execute(query("preflight_try_loopback"), {"target": target})
    except psycopg.Error as exc:
        return _loopback_failed(exc, described, loop.owner)
    return Check("loopback", "ok", f"text queries connect back {described}: tried, and it answers")


def _loopback_failed(exc: psycopg.Error, described: str, owner: str) -> Check:
    message = exc.diag.message_primary or str(exc)
    if exc.diag.message_detail:
        message += f" ({exc.diag.message_detail.rstrip('.')})"
    found = f"connecting back {described} failed: {message}"
    if isinstance(exc, psycopg.errors.ProhibitedSqlStatementAttempted):
        # dblink's check that a role that is no superuser gave the password the server asked for.
        fix = (
            f"the server let {owner} in without asking for its password (trust or peer authentication for that "
            "host), and dblink lets a role that is no superuser connect only when it is asked for one: require "
            f"scram-sha-256 for {owner} from the loopback's host in pg_hba.conf, or point {LOOPBACK_SERVER} at an "
            "address that asks for it (ALTER SERVER vk_loopback OPTIONS (SET host '...');)"
        )
    else:
        fix = (
            f"check {LOOPBACK_SERVER}'s host, port and dbname (ALTER SERVER vk_loopback OPTIONS (SET host '...');) "
            "and the user and password of the user mapping"
        )
    return Check("loopback", "warn", found, fix)


def _disconnect_check(conn: psycopg.Connection, role: _Role, pending: list[str]) -> Check:
    """client_connection_check_interval: a text query's caller that went away ends its backend (and loopback)
    within that long, rather than when the query times out."""
    name = "disconnect-check"
    interval = role.connection_check_interval
    if interval is None:
        return Check(name, "ok", "this server has no client_connection_check_interval")
    if interval != "0":
        return Check(name, "ok", f"client_connection_check_interval is {interval}")
    if CHECK_INTERVAL_REVISION in pending and role.owns_database:
        return Check(name, "ok", "client_connection_check_interval is 0: migrate sets 250ms for this database")
    why = (
        f"and {role.role_name} does not own database {role.database}, so migrate leaves it"
        if CHECK_INTERVAL_REVISION in pending
        else f"(revision {CHECK_INTERVAL_REVISION} sets it only where the migrating role owns the database)"
    )
    return Check(
        name,
        "warn",
        f"client_connection_check_interval is 0 {why}: the backend of a text query whose client went away waits "
        "until the query times out",
        f"ask the database's owner ({role.database_owner}) or an administrator:",
        (
            _statement(
                conn,
                "ALTER DATABASE {} SET client_connection_check_interval = '250ms'",
                sql.Identifier(role.database),
            ),
        ),
    )
