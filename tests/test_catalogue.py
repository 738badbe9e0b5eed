"""The installed catalogue as a DBA reads it: every function explained, each role able to
call exactly what the README documents for it, functions that read source tables with
dynamic SQL running with the rights and search_path the design gives them; and
`vectorkeep schema check|show` finding drift in a live database."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from helpers import cli
from vectorkeep.app import schema
from vectorkeep.db import catalogue, migrate

README = Path(__file__).resolve().parent.parent / "README.md"
ROLES = ("vk_app", "vk_worker", "vk_admin")


def documented_roles() -> dict[str, set[str]]:
    """Who may call each public and worker-contract function, from the README's tables
    (a row's first cell names the function, its last cell the roles)."""
    out: dict[str, set[str]] = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        names = re.findall(r"`vk\.(\w+)\(", cells[0]) if line.startswith("| `vk.") else []
        for name in names:
            out[name] = {f"vk_{r.strip()}" for r in cells[-1].split(",") if r.strip()}
    return out


def test_every_function_has_a_comment(conn: psycopg.Connection) -> None:
    missing = [k for k, p in catalogue.read(conn).items() if k.startswith("function ") and not p["comment"]]
    assert missing == []


def test_the_public_api_is_exactly_what_the_readme_lists(conn: psycopg.Connection) -> None:
    public = {
        re.sub(r'^function vk\."?(\w+)"?\(.*$', r"\1", k)
        for k in catalogue.read(conn)
        if k.startswith("function ") and not k.startswith("function vk._")
    }
    assert public == set(documented_roles())


@pytest.mark.parametrize("role", ROLES)
def test_each_role_can_execute_exactly_the_functions_documented_for_it(conn: psycopg.Connection, role: str) -> None:
    documented = {name for name, roles in documented_roles().items() if role in roles}
    callable_ = {
        name
        for (name,) in conn.execute(
            "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'vk'::regnamespace "
            "AND p.proname !~ '^_' AND has_function_privilege(%s, p.oid, 'EXECUTE')",
            (role,),
        )
    }
    assert callable_ == documented


def test_an_application_calls_no_internal_function_that_runs_as_its_owner(conn: psycopg.Connection) -> None:
    """vk_app needs some internal helpers (the ones its read API calls); of those that run as their
    owner it gets only the counts behind vk.status and the text query's route to the workers
    (which reads the cache and sends the request; tests/test_text_queries.py attacks it)."""
    rows = conn.execute(
        "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'vk'::regnamespace AND p.proname ~ '^_' "
        "AND p.prosecdef AND has_function_privilege('vk_app', p.oid, 'EXECUTE')"
    ).fetchall()
    assert sorted(rows) == [("_collection_stats",), ("_embed_vector",)]


EXPRESSIONS = re.compile(r"\b(text_expression|metadata_expression|group_expression|position_expression)\b")


def _format_calls(definition: str) -> Iterator[str]:
    """The text of each EXECUTE format(...) call of a definition, parentheses balanced."""
    for start in (m.end() for m in re.finditer(r"EXECUTE\s+format\(", definition)):
        depth, at = 1, start
        while depth and at < len(definition):
            depth += {"(": 1, ")": -1}.get(definition[at], 0)
            at += 1
        yield definition[start:at]


def test_no_function_that_runs_as_its_owner_evaluates_a_stored_expression(conn: psycopg.Connection) -> None:
    """Stored expressions run only inside their author's functions (schema vk_expr); the functions of
    vk that build SQL from them run as their caller (the author, at registration)."""
    objects = catalogue.read(conn)
    builders = {
        re.sub(r"^function vk\.(\w+)\(.*$", r"\1", key)
        for key, props in objects.items()
        if key.startswith("function ") and any(EXPRESSIONS.search(call) for call in _format_calls(props["definition"]))
    }  # fmt: skip
    assert builders == {"_install_text_functions", "_install_metadata_function", "_install_order_function"}
    for key, props in objects.items():
        name = re.sub(r"^function vk\.(\w+)\(.*$", r"\1", key)
        if name in builders:
            assert props["security"] == "invoker", key
    # And no function runs as its owner with the caller's search_path.
    loose = [k for k, p in objects.items() if k.startswith("function ") and p["security"] == "definer"
             and not (p["search_path"] or "").startswith("pg_catalog")]  # fmt: skip
    assert loose == []


def test_schema_check_passes_on_a_fresh_install_and_finds_drift(db_url: str) -> None:
    assert not schema.check(db_url).drift
    with psycopg.connect(db_url, autocommit=True) as conn:
        # The drift of revision 0006 (a re-created function lost SECURITY DEFINER), a lost
        # comment, a function nobody defined, and a grant too many.
        conn.execute("ALTER FUNCTION vk._coverage(vk.collections, vk.models) SECURITY INVOKER")
        conn.execute("COMMENT ON FUNCTION vk.search(text, vector, integer, text, jsonb) IS NULL")
        conn.execute("CREATE FUNCTION vk.stray() RETURNS int LANGUAGE sql RETURN 1")
        conn.execute("GRANT EXECUTE ON FUNCTION vk.retire(text, text) TO vk_app")
    done = cli(db_url, "schema", "check")
    assert done.returncode == 1
    assert "changed  function vk._coverage(vk.collections,vk.models): definition, security" in done.stdout
    assert "changed  function vk.search(text,vector,integer,text,jsonb): comment" in done.stdout
    assert "extra    function vk.stray()" in done.stdout
    assert "changed  function vk.retire(text,text): grants" in done.stdout
    done = cli(db_url, "schema", "check", "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["extra"] == ["function vk.stray()"]


def test_schema_show_prints_the_current_definition_from_its_file(db_url: str) -> None:
    done = cli(db_url, "schema", "show", "vk.search")
    assert done.returncode == 0, done.stderr
    assert "sql/definitions/30_search.sql" in done.stdout
    # Both forms, the vector query's and the text query's.
    assert "CREATE OR REPLACE FUNCTION vk.search(\n    collection text, query vector" in done.stdout
    assert "COMMENT ON FUNCTION vk.search(text, vector, integer, text, jsonb)" in done.stdout
    assert "COMMENT ON FUNCTION vk.search(text, text, integer, text, jsonb)" in done.stdout
    assert schema.show("vk.no_such_thing") == []


def test_head_release_catalogue_is_the_one_schema_check_uses() -> None:
    head = migrate.head_revision()
    assert head is not None
    assert migrate.release(head).revision == head
