"""No role runs code as vk's owner: every function that runs with the owner's rights fixes a
search_path in which no other role may create objects, and an upgrade refuses a pgvector schema
that others may create in (a function there could win the overload resolution of a built-in one,
public.convert_to(text, text) over pg_catalog.convert_to(text, name), and run as the owner)."""

from collections.abc import Callable

import psycopg
import pytest

from helpers import one
from vectorkeep.db import migrate

# Functions its loopback connection runs as the owner, though none is SECURITY DEFINER.
LOOPBACK = ("_request_embedding", "_await_embedding")

OWNER_RUN = """
SELECT p.oid::regprocedure::text, coalesce((SELECT c FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%%'), '')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'vk' AND (p.prosecdef OR p.proname = ANY (%s))
"""


def test_every_owner_run_function_fixes_a_search_path_nobody_else_writes(
    conn: psycopg.Connection, login: Callable[[str], str]
) -> None:
    for group in ("vk_app", "vk_worker", "vk_admin"):
        login(group)  # real roles of each kind exist while the catalogue is read
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    conn.execute("SELECT vk.attach('notes', 'id', 'body', model => NULL)")  # its generated trigger function too
    functions = conn.execute(OWNER_RUN, (list(LOOPBACK),)).fetchall()
    assert len(functions) > 30
    unfixed = [name for name, path in functions if not path]
    assert unfixed == [], "owner-run functions without a search_path"
    schemas = {s.strip() for _, path in functions for s in path.removeprefix("search_path=").split(",")}
    assert "public" not in schemas - {one(conn, "SELECT extnamespace::regnamespace::text FROM pg_extension "
                                                "WHERE extname = 'vector'")}  # fmt: skip
    assert '"$user"' not in schemas
    for schema in schemas - {"pg_catalog", "pg_temp"}:
        creators = [c for (c,) in conn.execute("SELECT vk._schema_creators(%s)", (schema,)).fetchall()]
        assert creators == [], f"{creators} may create objects in {schema}, which owner-run functions search"


def test_an_upgrade_refuses_a_pgvector_schema_others_may_create_in(
    empty_db_url: str, server_url: str, login: Callable[[str], str]
) -> None:
    """PostgreSQL 14's default (CREATE on public for PUBLIC), or any such grant: the attacker's function
    would run as the owner of every SECURITY DEFINER function; the upgrade says how to close it."""
    attacker = login("vk_app").split("//", 1)[1].split("@", 1)[0]
    with psycopg.connect(empty_db_url, autocommit=True) as owner:
        owner.execute("CREATE EXTENSION vector")
        owner.execute(f"GRANT CREATE ON SCHEMA public TO {attacker}")
        try:
            with pytest.raises(
                psycopg.errors.InsufficientPrivilege, match=f"{attacker} may create objects in schema public"
            ) as refused:
                migrate.upgrade(empty_db_url)
            assert f"REVOKE CREATE ON SCHEMA public FROM {attacker}" in (refused.value.diag.message_hint or "")
        finally:
            owner.execute(f"REVOKE CREATE ON SCHEMA public FROM {attacker}")  # its role can go at teardown
        owner.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        try:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match=r"PUBLIC.* may create objects"):
                migrate.upgrade(empty_db_url)
        finally:
            owner.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        migrate.upgrade(empty_db_url)
        assert one(owner, "SELECT count(*) FROM vk.models") >= 1
