"""What differs between the PostgreSQL versions vectorkeep runs on (18 embedded, 15 in .ci/lane-postgres15):
privileges an older server has no such thing as (MAINTAIN, new in 17) are neither granted nor expected
there, definitions compare without the column lists a server prints for a function in FROM, and the
functions whose SQL-standard bodies use a table's row type can be loosened so that a revision may change
that table (PostgreSQL 15 refuses ALTER TABLE ... ADD COLUMN ... DEFAULT otherwise)."""

import psycopg
import pytest

from helpers import one
from vectorkeep.db import catalogue, definitions


def test_maintain_is_expected_only_of_servers_that_have_it() -> None:
    recorded: catalogue.Catalogue = {
        "table vk.models": {"grants": ["vk_admin:MAINTAIN", "vk_admin:SELECT", "vk_app:UPDATE (name)"]},
        "function vk.f()": {"grants": ["PUBLIC:EXECUTE"]},
    }
    assert catalogue.for_server(recorded, 180000) == recorded
    assert catalogue.for_server(recorded, 170000) == recorded
    on_15_grants = catalogue.for_server(recorded, 150020)["table vk.models"]["grants"]
    assert on_15_grants == ["vk_admin:SELECT", "vk_app:UPDATE (name)"]
    assert recorded["table vk.models"]["grants"][0] == "vk_admin:MAINTAIN"  # not changed in place

    on_15 = catalogue.ServerCatalogue(catalogue.for_server(recorded, 150020))
    on_15.server_version = 150020
    assert catalogue.diff(recorded, on_15).lines() == []
    # Read from a server that has MAINTAIN, or from nowhere (a plain catalogue), its absence is drift.
    on_17 = catalogue.ServerCatalogue(on_15)
    on_17.server_version = 170000
    assert catalogue.diff(recorded, on_17).lines() == ["changed  table vk.models: grants"]
    assert catalogue.diff(recorded, dict(on_15)).lines() == ["changed  table vk.models: grants"]


def test_definitions_compare_without_the_columns_a_server_prints_for_a_function_in_from() -> None:
    on_18 = (
        "RETURN (EXISTS (SELECT 1 FROM pg_stat_get_activity(_backend_alive.backend) "
        "pg_stat_get_activity(datid, pid, gss_enc, gss_delegation, leader_pid, query_id)))"
    )
    on_15 = on_18.replace(" gss_delegation,", "")
    assert catalogue.comparable_definition(on_18) == catalogue.comparable_definition(on_15)
    assert catalogue.comparable_definition(on_15) == (
        "RETURN (EXISTS (SELECT 1 FROM pg_stat_get_activity(_backend_alive.backend)))"
    )
    # An alias of the author's, and a column definition list, are the definition's own.
    for own in (
        "SELECT x.key FROM jsonb_each(f.metrics) x(key, value)",
        "SELECT r FROM vk_dblink.dblink($1, $2) AS t(r bigint)",
    ):
        assert catalogue.comparable_definition(own) == own
    nested = "FROM jsonb_each(coalesce(m, '{}'::jsonb)) jsonb_each(key, value)"
    assert catalogue.comparable_definition(nested) == "FROM jsonb_each(coalesce(m, '{}'::jsonb))"
    drift = catalogue.diff({"function vk.f()": {"definition": on_18}}, {"function vk.f()": {"definition": on_15}})
    assert drift.lines() == []
    assert catalogue.diff(
        {"function vk.f()": {"definition": on_18}}, {"function vk.f()": {"definition": on_18 + " "}}
    ).lines() == ["changed  function vk.f(): definition"]


HEADER = "CREATE OR REPLACE FUNCTION vk.f(m vk.models)\n RETURNS text\n LANGUAGE sql\n IMMUTABLE\n"


@pytest.mark.parametrize(
    ("body", "statements"),
    [
        ("RETURN ((m.name || '@'::text) || m.version)", "SELECT ((m.name || '@'::text) || m.version)"),
        ("BEGIN ATOMIC\n SELECT 1;\n SELECT m.name;\nEND", "SELECT 1;\n SELECT m.name;"),
    ],
)
def test_a_stand_in_has_the_same_statements_as_a_string_body(body: str, statements: str) -> None:
    assert definitions.standin(HEADER + body + "\n", body) == f"{HEADER}AS $vk_standin$\n{statements}\n$vk_standin$\n"


def test_loosened_functions_let_a_table_change_its_row_type_and_still_answer(conn: psycopg.Connection) -> None:
    label = "SELECT vk.model_label(m) FROM vk.models m ORDER BY m.id LIMIT 1"
    before = one(conn, label)
    with conn.transaction(force_rollback=True):
        loosened = definitions.loosen_row_type_users(conn, "vk.models", "vk.collections")
        assert {"vk.model_label(vk.models)", "vk._keyword_sql(vk.collections,vk.models)"} <= set(loosened)
        assert one(conn, "SELECT prosqlbody IS NULL FROM pg_proc WHERE oid = 'vk.model_label(vk.models)'::regprocedure")
        assert one(conn, label) == before
        conn.execute("ALTER TABLE vk.models ADD COLUMN probe boolean NOT NULL DEFAULT false")
        conn.execute("ALTER TABLE vk.collections ADD COLUMN probe boolean NOT NULL DEFAULT false")
        assert one(conn, label) == before
    assert one(conn, "SELECT prosqlbody IS NOT NULL FROM pg_proc WHERE oid = 'vk.model_label(vk.models)'::regprocedure")
