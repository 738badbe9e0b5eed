"""The installed catalogue as a DBA reads it: every function explained, each role able to
call exactly what docs/reference/api.md documents for it, functions that read source tables with
dynamic SQL running with the rights and search_path the design gives them; and
`vectorkeep schema check|show` finding drift in a live database."""

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from helpers import cli, one, serve
from vectorkeep.app import schema
from vectorkeep.db import catalogue, migrate
from vectorkeep.workers import kinds
from vectorkeep.workers.encoder_cache import EncoderCache

API = Path(__file__).resolve().parent.parent / "docs" / "reference" / "api.md"
ROLES = ("vk_app", "vk_worker", "vk_admin")


def documented_roles() -> dict[str, set[str]]:
    """Who may call each public and worker-contract function, from the tables of docs/reference/api.md
    (a row's first cell names the function, its last cell the roles)."""
    out: dict[str, set[str]] = {}
    for line in API.read_text().splitlines():
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


class HashedWords:
    """A bag of hashed words in 8 dimensions: an encoder with no model to load."""

    def __init__(self, params: dict[str, Any], artifact: bytes | None = None) -> None:
        pass

    @property
    def dim(self) -> int:
        return 8

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.split():
                out[i, hashlib.blake2b(word.encode(), digest_size=1).digest()[0] % 8] += 1.0
            out[i] /= max(float(np.linalg.norm(out[i])), 1e-9)
        return out


@pytest.fixture
def collections(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> psycopg.Connection:
    """Beside vk.documents: shop.notes (metadata, an order, a second version backfilled by vk.add_model and
    a third trained by vk.train: both their jobs queued, their indexes not built yet) and shop.pages
    (chunked)."""
    monkeypatch.setitem(kinds.EXTRA_LOADERS, "hashed-test", HashedWords)
    conn.execute(
        "INSERT INTO vk.model_kinds (kind, role, trainable, loadable, description) "
        "VALUES ('hashed-test', 'encoder', false, true, 'hashed bag of words')"
    )
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('hashed', 1, 'hashed-test', 8)")
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('hashed', 2, 'hashed-test', 8)")
    # In a schema of their own: the checks print their names qualified whatever pgvector's schema is.
    conn.execute("CREATE SCHEMA shop")
    conn.execute("CREATE TABLE shop.notes (id int PRIMARY KEY, doc int, body text)")
    conn.execute(
        "INSERT INTO shop.notes SELECT g, g % 5, 'note ' || g || ' about ' "
        "|| (ARRAY['cats', 'dogs', 'birds'])[g % 3 + 1] || ' in the ' || (ARRAY['rain', 'sun'])[g % 2 + 1] "
        "FROM generate_series(1, 60) g"
    )
    conn.execute(
        "SELECT vk.attach('shop.notes', 'id', 'body', 'hashed@1', metadata => 'jsonb_build_object(''doc'', doc)')"
    )
    conn.execute("SELECT vk.set_order('notes', 'doc', 'id')")
    conn.execute("SELECT vk.add_model('notes', 'hashed@2')")
    conn.execute("SELECT vk.train('words', 'tfidf', '{\"dim\": 8}', 'notes')")
    conn.execute("CREATE TABLE shop.pages (id int PRIMARY KEY, body text)")
    conn.execute(
        "INSERT INTO shop.pages SELECT g, repeat('A sentence of page ' || g || '. ', 5) FROM generate_series(1, 5) g"
    )
    conn.execute("SELECT vk.attach('shop.pages', 'id', 'body', 'hashed@1')")
    conn.execute("SELECT vk.set_chunking('pages', 'sentences', 64)")
    return conn


def test_schema_check_passes_with_collections_of_every_kind(
    collections: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    """Finding 1: each collection's keyword index was extra, so `schema check` failed wherever a
    table was attached. A backfill's indexes are not missing while its job is still to build them."""
    conn = collections
    assert one(conn, "SELECT count(*) FROM vk.status WHERE index = 'deferred'") == 1  # hashed@2 on notes
    assert schema.check(db_url).drift.lines() == []

    serve(db_url, encoders)
    states = conn.execute("SELECT collection, model, index FROM vk.status ORDER BY 1, 2").fetchall()
    assert states == [
        ("documents", "minilm@1", "valid"),
        ("notes", "hashed@1", "valid"),
        ("notes", "hashed@2", "valid"),
        ("notes", "words@1", "valid"),
        ("pages", "hashed@1", "valid"),
    ]
    # What a version or a collection brought goes with it.
    conn.execute("SELECT vk.retire('hashed@2', 'notes', confirm => true)")
    conn.execute("CREATE TABLE shop.drafts (id int PRIMARY KEY, body text)")
    conn.execute("SELECT vk.attach('shop.drafts', 'id', 'body', 'hashed@1', metadata => 'jsonb_build_object()')")
    conn.execute("SELECT vk.detach('drafts')")
    done = cli(db_url, "schema", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the schema matches the catalogue of revision" in done.stdout


def test_schema_check_finds_drift_in_the_schema_and_in_collections(
    collections: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    """Each kind of drift the check found before, and the collections' own: missing, extra, changed."""
    conn = collections
    serve(db_url, encoders)
    assert not schema.check(db_url).drift
    notes = one(conn, "SELECT vk.collection_id('notes')")
    hashed = one(conn, "SELECT id FROM vk.models WHERE name = 'hashed' AND version = 1")
    # A backfill's indexes, left unbuilt by its cancelled job, are missing.
    third = one(
        conn, "INSERT INTO vk.models (name, version, kind, dim) VALUES ('hashed', 3, 'hashed-test', 8) RETURNING id"
    )
    conn.execute("SELECT vk.add_model('notes', 'hashed@3')")
    assert not schema.check(db_url).drift
    conn.execute("SELECT vk.cancel_job(id) FROM vk.jobs WHERE status = 'queued'")
    # The drift of revision 0006 (a re-created function lost SECURITY DEFINER), a lost comment, a
    # function nobody defined, a grant too many, a lost index, a changed table, a lost trigger.
    conn.execute("ALTER FUNCTION vk._coverage(vk.collections, vk.models) SECURITY INVOKER")
    conn.execute("COMMENT ON FUNCTION vk.search(text, vector, integer, text, jsonb) IS NULL")
    conn.execute("CREATE FUNCTION vk.stray() RETURNS int LANGUAGE sql RETURN 1")
    conn.execute("GRANT EXECUTE ON FUNCTION vk.retire(text, text, boolean) TO vk_app")
    conn.execute("DROP INDEX vk.embeddings_metadata")
    conn.execute("ALTER TABLE vk.jobs ADD COLUMN note text")
    conn.execute("DROP TRIGGER documents_touch ON vk.documents")
    # And in the collections: a version's lost index, a stray one, a disabled queue trigger and a lost
    # one, an expression function given to another role, and a function nobody's expression wrote.
    conn.execute(f"DROP INDEX vk.embeddings_c{notes}_m{hashed}_hnsw")
    conn.execute(
        "CREATE INDEX embeddings_c99_m1_fts ON vk.embeddings USING gin (to_tsvector('simple', body)) "
        "WHERE collection_id = 99 AND model_id = 1"
    )
    conn.execute("ALTER TABLE shop.notes DISABLE TRIGGER vk_queue_insert")
    conn.execute("DROP TRIGGER vk_forget_delete ON shop.pages")
    conn.execute(f"ALTER FUNCTION vk_expr.meta_c{notes}(text[]) OWNER TO vk_worker")
    conn.execute("CREATE FUNCTION vk_expr.peek() RETURNS int LANGUAGE sql RETURN 1")
    done = cli(db_url, "schema", "check")
    assert done.returncode == 1
    assert sorted(done.stdout.splitlines()[1:]) == sorted(
        [
            "changed  function vk._coverage(vk.collections,vk.models): definition, security",
            "changed  function vk.search(text,vector,integer,text,jsonb): comment",
            "extra    function vk.stray()",
            "changed  function vk.retire(text,text,boolean): grants",
            "missing  index vk.embeddings_metadata",
            "changed  table vk.jobs: columns",
            "missing  trigger documents_touch ON vk.documents",
            f"missing  index vk.embeddings_c{notes}_m{hashed}_hnsw",
            f"missing  index vk.embeddings_c{notes}_m{third}_fts",
            f"missing  index vk.embeddings_c{notes}_m{third}_hnsw",
            "extra    index vk.embeddings_c99_m1_fts",
            "changed  trigger vk_queue_insert ON shop.notes: enabled",
            "missing  trigger vk_forget_delete ON shop.pages",
            f"changed  function vk_expr.meta_c{notes}(text[]): owner",
            "extra    function vk_expr.peek()",
        ]
    )
    done = cli(db_url, "schema", "check", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["extra"] == [
        "function vk.stray()",
        "function vk_expr.peek()",
        "index vk.embeddings_c99_m1_fts",
    ]


def test_schema_show_prints_the_current_definition_from_its_file(db_url: str) -> None:
    done = cli(db_url, "schema", "show", "vk.search")
    assert done.returncode == 0, done.stderr
    assert "sql/definitions/30_search.sql" in done.stdout
    # Both forms, the vector query's and the text query's.
    assert "CREATE OR REPLACE FUNCTION vk.search(\n    collection text, query vector" in done.stdout
    assert "COMMENT ON FUNCTION vk.search(text, vector, integer, text, jsonb)" in done.stdout
    assert "COMMENT ON FUNCTION vk.search(text, text, integer, text, jsonb)" in done.stdout
    assert schema.show("vk.no_such_thing") == []


COLUMNS = (
    "SELECT attname, format_type(atttypid, atttypmod), attnotnull, attidentity FROM pg_attribute"
    " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
)


def test_schema_show_prints_a_table_as_sql_that_creates_it(db_url: str) -> None:
    """Tables are built up by run-once migrations; `schema show vk.embeddings` prints their sum as one
    CREATE TABLE (with indexes, row security, policies, triggers, comments, grants), and that SQL
    runs: every table of head, created again from it in a schema of its own, has the installed columns."""
    shown = schema.show("vk.embeddings")
    assert [d.path for d in shown] == [f"sql/releases/{migrate.head_revision()}.json"]
    text = shown[0].text
    assert "CREATE TABLE vk.embeddings (\n    collection_id bigint NOT NULL," in text
    assert "CONSTRAINT embeddings_pkey PRIMARY KEY (collection_id, pk, model_id, chunk)" in text
    assert "ALTER TABLE vk.embeddings ENABLE ROW LEVEL SECURITY;" in text
    assert "CREATE POLICY readers ON vk.embeddings" in text and "CREATE TRIGGER embeddings_check" in text
    assert "GRANT SELECT ON vk.embeddings TO vk_app;" in text
    assert "embeddings_c1_m1" not in text  # a collection's own indexes are not the table's
    with psycopg.connect(db_url) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'vk'::regnamespace AND relkind IN ('r', 'p')"
            )
        ]
        assert "embeddings" in tables
        conn.execute("CREATE SCHEMA vk_shown")
        for table in tables:
            (definition,) = schema.show(f"vk.{table}")
            sql = re.sub(rf"\bvk\.{table}\b(?!\.)", f"vk_shown.{table}", definition.text)
            if conn.info.server_version < 170000:  # recorded on PostgreSQL 18, which has MAINTAIN
                sql = sql.replace("MAINTAIN, ", "")
            conn.execute(sql.encode())
            shown_columns = conn.execute(COLUMNS, (f"vk_shown.{table}",)).fetchall()
            assert shown_columns == conn.execute(COLUMNS, (f"vk.{table}",)).fetchall(), table
        conn.rollback()


def test_head_release_catalogue_is_the_one_schema_check_uses() -> None:
    head = migrate.head_revision()
    assert head is not None
    assert migrate.release(head).revision == head
