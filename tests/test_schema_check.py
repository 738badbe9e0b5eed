"""`vectorkeep schema check` on a database in use: it exits 0 with attached, chunked, trained and
backfilled collections, and non-zero naming the object for each kind of drift, made one at a time.

tests/test_catalogue.py::test_schema_check_finds_drift_in_the_schema_and_in_collections makes several
kinds of drift at once (a function's security, comment and grants, a stray function, a lost index and
trigger of vk, a changed table, a collection's lost and stray indexes, a disabled and a lost queue
trigger, an expression function given away, a stray one): those are not repeated here.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from helpers import cli, one, serve
from vectorkeep.cli import main
from vectorkeep.db import migrate
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache

SETUP = """
CREATE SCHEMA shop;
CREATE TABLE shop.notes (id int PRIMARY KEY, doc int, body text);
INSERT INTO shop.notes
SELECT g, g % 4, 'note ' || g || ' about ' || (ARRAY['cats', 'dogs', 'birds', 'fish'])[g % 4 + 1]
       || ' in the ' || (ARRAY['rain', 'sun', 'snow'])[g % 3 + 1] || ', ' || (ARRAY['seen', 'heard'])[g % 2 + 1]
       || ' at ' || (ARRAY['dawn', 'noon', 'dusk', 'night', 'home'])[g % 5 + 1]
FROM generate_series(1, 40) g;
CREATE TABLE shop.pages (id int PRIMARY KEY, body text);
INSERT INTO shop.pages
SELECT g, 'Page ' || g || ' opens with a sentence. ' || repeat('It goes on about cats and dogs. ', g % 3 + 1)
       || 'It ends here.'
FROM generate_series(1, 8) g;
"""


@dataclass(frozen=True)
class Prepared:
    name: str
    url: str
    ids: dict[str, int]


@pytest.fixture(scope="module")
def prepared(server_url: str, template_url: str, encoders: EncoderCache) -> Iterator[Prepared]:
    """Beside vk.documents: shop.notes (metadata, an order, minilm@1, and words@1 trained on it by
    vk.train) and shop.pages (chunked, minilm@1, and words@1 backfilled by vk.add_model), every job
    run and every index built. The tests copy it."""
    from conftest import TEMPLATE, drop_database, fresh_database

    name, url = fresh_database(server_url, TEMPLATE)
    with connect(url, autocommit=True) as conn:
        conn.execute(SETUP)
        conn.execute("SELECT vk.attach('shop.notes', 'id', 'body', metadata => 'jsonb_build_object(''doc'', doc)')")
        conn.execute("SELECT vk.set_order('notes', 'doc', 'id')")
        conn.execute("SELECT vk.attach('shop.pages', 'id', 'body')")
        conn.execute("SELECT vk.set_chunking('pages', 'sentences', 8)")
        conn.execute("""SELECT vk.train('words', 'tfidf', '{"dim": 8}', 'notes')""")
    serve(url, encoders)
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT vk.add_model('pages', 'words@1')")
    serve(url, encoders)
    with connect(url, autocommit=True) as conn:
        states = conn.execute("SELECT collection, model, index, pending, dead FROM vk.status ORDER BY 1, 2").fetchall()
        assert states == [
            ("documents", "minilm@1", "valid", 0, 0),
            ("notes", "minilm@1", "valid", 0, 0),
            ("notes", "words@1", "valid", 0, 0),
            ("pages", "minilm@1", "valid", 0, 0),
            ("pages", "words@1", "valid", 0, 0),
        ]
        assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE chunk > 0") > 0, "pages were not chunked"
        jobs = "SELECT string_agg(DISTINCT kind || ':' || status, ',') FROM vk.jobs"
        assert one(conn, jobs) == "reembed:succeeded,train:succeeded"
        ids = {
            "notes": one(conn, "SELECT vk.collection_id('notes')"),
            "pages": one(conn, "SELECT vk.collection_id('pages')"),
            "minilm": one(conn, "SELECT (vk.model('minilm@1')).id"),
            "words": one(conn, "SELECT (vk.model('words@1')).id"),
        }
    yield Prepared(name, url, ids)
    drop_database(server_url, name)


@pytest.fixture
def copy_url(server_url: str, prepared: Prepared) -> Iterator[str]:
    """A database of its own, copied from the prepared one."""
    from conftest import drop_database, fresh_database

    name, url = fresh_database(server_url, prepared.name)
    yield url
    drop_database(server_url, name)


def test_schema_check_passes_with_attached_chunked_trained_and_backfilled_collections(prepared: Prepared) -> None:
    done = cli(prepared.url, "schema", "check", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    head = migrate.head_revision()
    assert json.loads(done.stdout) == {"revision": head, "head": head, "missing": [], "extra": [], "changed": {}}


@dataclass(frozen=True)
class Case:
    statements: tuple[str, ...]
    expected: tuple[str, ...]  # Drift.lines(), the {placeholders} filled from Prepared.ids


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def edit_trigger(name: str, table: str, old: str, new: str) -> str:
    """CREATE OR REPLACE TRIGGER from the trigger's printed definition, edited (old -> new)."""
    printed = (
        f"(SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = {literal(name)} "
        f"AND tgrelid = {literal(table)}::regclass)"
    )
    return (
        f"DO $$ BEGIN EXECUTE replace(replace({printed}, 'CREATE TRIGGER', 'CREATE OR REPLACE TRIGGER'), "
        f"{literal(old)}, {literal(new)}); END $$"
    )


DRIFTS = {
    # --- the schema against the release's catalogue ---
    "function body edited in place": Case(
        (
            "CREATE OR REPLACE FUNCTION vk._exact_bound(k integer) RETURNS integer LANGUAGE sql IMMUTABLE "
            "PARALLEL SAFE RETURN greatest(500, k * 100)",
        ),
        ("changed  function vk._exact_bound(integer): definition",),
    ),
    "function dropped": Case(
        ('DROP FUNCTION vk."similar"(text, text, integer, text, jsonb)',),
        ('missing  function vk."similar"(text,text,integer,text,jsonb)',),
    ),
    "definer function with the caller's search_path": Case(
        ("ALTER FUNCTION vk.set_chunking(text, text, integer, integer) SET search_path = public, pg_temp",),
        ("changed  function vk.set_chunking(text,text,integer,integer): definition, search_path",),
    ),
    "function volatility": Case(
        ("ALTER FUNCTION vk.row_vector(text, text, text) VOLATILE",),
        ("changed  function vk.row_vector(text,text,text): definition, volatility",),
    ),
    "view redefined": Case(
        (
            "DO $$ BEGIN EXECUTE 'CREATE OR REPLACE VIEW vk.status AS SELECT s.* FROM ('"
            " || rtrim(pg_get_viewdef('vk.status'::regclass), ';') || ') s WHERE s.collection <> ''secret'''; END $$",
        ),
        ("changed  view vk.status: definition",),
    ),
    "view grant revoked": Case(
        ("REVOKE SELECT ON vk.status FROM vk_app",),
        ("changed  view vk.status: grants",),
    ),
    "table grant too many": Case(
        ("GRANT DELETE ON vk.models TO vk_app",),
        ("changed  table vk.models: grants",),
    ),
    "table constraint added": Case(
        ("ALTER TABLE vk.jobs ADD CONSTRAINT jobs_positive CHECK (id > 0) NOT VALID",),
        ("changed  table vk.jobs: constraints",),
    ),
    "column comment": Case(
        ("COMMENT ON COLUMN vk.models.dim IS 'edited by hand'",),
        ("changed  table vk.models: column_comments",),
    ),
    "row-level security off": Case(
        ("ALTER TABLE vk.embeddings DISABLE ROW LEVEL SECURITY",),
        ("changed  table vk.embeddings: row_security",),
    ),
    "extra table": Case(
        ("CREATE TABLE vk.scratch (id int)",),
        ("extra    table vk.scratch",),
    ),
    "index of vk redefined": Case(
        (
            "DROP INDEX vk.embeddings_metadata",
            "CREATE INDEX embeddings_metadata ON vk.embeddings USING gin (metadata) WHERE metadata IS NOT NULL",
        ),
        ("changed  index vk.embeddings_metadata: definition",),
    ),
    "extra index of vk": Case(
        ("CREATE INDEX jobs_by_status ON vk.jobs (status)",),
        ("extra    index vk.jobs_by_status",),
    ),
    "trigger of vk redefined": Case(
        (edit_trigger("documents_touch", "vk.documents", "BEFORE UPDATE ON", "BEFORE UPDATE OF body ON"),),
        ("changed  trigger documents_touch ON vk.documents: definition",),
    ),
    "extra trigger on a table of vk": Case(
        (
            "CREATE TRIGGER jobs_unchanged BEFORE UPDATE ON vk.jobs FOR EACH ROW "
            "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        ),
        ("extra    trigger jobs_unchanged ON vk.jobs",),
    ),
    "policy opened up": Case(
        ("ALTER POLICY readers ON vk.embeddings USING (true)",),
        ("changed  policy readers ON vk.embeddings: definition",),
    ),
    "extra policy": Case(
        ("CREATE POLICY peek ON vk.jobs FOR SELECT TO vk_app USING (true)",),
        ("extra    policy peek ON vk.jobs",),
    ),
    "schema grant too many": Case(
        ("GRANT CREATE ON SCHEMA vk TO vk_app",),
        ("changed  schema vk: grants",),
    ),
    # --- each collection's own objects against what vk.collections and vk.collection_models call for ---
    "version's index of another method": Case(
        (
            "DROP INDEX vk.embeddings_c{notes}_m{minilm}_hnsw",
            "CREATE INDEX embeddings_c{notes}_m{minilm}_hnsw ON vk.embeddings (pk) "
            "WHERE collection_id = {notes} AND model_id = {minilm}",
        ),
        ("changed  index vk.embeddings_c{notes}_m{minilm}_hnsw: method",),
    ),
    "version's index left invalid by a failed build": Case(
        (
            "DROP INDEX vk.embeddings_c{pages}_m{words}_fts",
            # Fails on the first row (division by zero), leaving the index behind, invalid.
            "CREATE INDEX CONCURRENTLY embeddings_c{pages}_m{words}_fts ON vk.embeddings "
            "USING gin (to_tsvector('english'::regconfig, (chunk / (chunk - chunk))::text)) "
            "WHERE collection_id = {pages} AND model_id = {words}",
        ),
        ("changed  index vk.embeddings_c{pages}_m{words}_fts: valid",),
    ),
    "trained version's keyword index dropped": Case(
        ("DROP INDEX vk.embeddings_c{notes}_m{words}_fts",),
        ("missing  index vk.embeddings_c{notes}_m{words}_fts",),
    ),
    "backfilled version's HNSW index dropped": Case(
        ("DROP INDEX vk.embeddings_c{pages}_m{words}_hnsw",),
        ("missing  index vk.embeddings_c{pages}_m{words}_hnsw",),
    ),
    "insert trigger function runs as its caller": Case(
        ("ALTER FUNCTION vk._on_insert_c{pages}() SECURITY INVOKER",),
        ("changed  function vk._on_insert_c{pages}(): security",),
    ),
    "insert trigger function with the caller's search_path": Case(
        ("ALTER FUNCTION vk._on_insert_c{notes}() SET search_path = public, pg_temp",),
        ("changed  function vk._on_insert_c{notes}(): search_path",),
    ),
    "expression function dropped": Case(
        ("DROP FUNCTION vk_expr.meta_c{notes}(text[])",),
        ("missing  function vk_expr.meta_c{notes}(text[])",),
    ),
    "expression function granted to everyone": Case(
        ("GRANT EXECUTE ON FUNCTION vk_expr.texts_c{pages}(text, integer) TO PUBLIC",),
        ("changed  function vk_expr.texts_c{pages}(text,integer): grants",),
    ),
    "expression function runs as its caller": Case(
        ("ALTER FUNCTION vk_expr.order_c{notes}() SECURITY INVOKER",),
        ("changed  function vk_expr.order_c{notes}(): security",),
    ),
    "queue trigger pointed at another collection": Case(
        (edit_trigger("vk_queue_update", "shop.notes", "vk._on_update('{notes}')", "vk._on_update('{pages}')"),),
        ("changed  trigger vk_queue_update ON shop.notes: executes",),
    ),
    "queue trigger left on a table no collection reads": Case(
        (
            "CREATE TABLE shop.archive (id int PRIMARY KEY, body text)",
            "CREATE TRIGGER vk_forget_delete AFTER DELETE ON shop.archive FOR EACH ROW "
            "EXECUTE FUNCTION vk._on_delete('{notes}')",
        ),
        ("extra    trigger vk_forget_delete ON shop.archive",),
    ),
}


@pytest.mark.parametrize("drift", list(DRIFTS))
def test_schema_check_fails_naming_each_kind_of_drift(
    drift: str, prepared: Prepared, copy_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    case = DRIFTS[drift]
    ids = prepared.ids
    with psycopg.connect(copy_url, autocommit=True) as conn:
        for statement in case.statements:
            statement = statement.format(**ids)
            if "CONCURRENTLY" in statement:
                with pytest.raises(psycopg.errors.DivisionByZero):
                    conn.execute(statement)
            else:
                conn.execute(statement)
    capsys.readouterr()
    assert main(["--database-url", copy_url, "schema", "check", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    found = [f"missing  {k}" for k in report["missing"]] + [f"extra    {k}" for k in report["extra"]]
    found += [f"changed  {k}: {', '.join(props)}" for k, props in report["changed"].items()]
    assert found == [line.format(**ids) for line in case.expected]
