"""The security model, tried by real login roles (members of vk_app, vk_worker, vk_admin, none a
superuser, none granted the table of secrets): no stored expression runs with more rights than
its author, reading follows the source table, and one bad expression or row fails alone."""

from collections.abc import Callable, Iterator

import numpy as np
import psycopg
import pytest
from psycopg import errors

from helpers import FAST_RETRY, drain, one
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.worker import Worker, WorkerSettings

SECRET = "the launch code is 0000"
Login = Callable[[str], str]


@pytest.fixture
def secrets(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A table of secrets nobody but its owner (the schema owner here) may read, and a table of
    notes every vk role may read."""
    conn.execute("CREATE TABLE secrets (id int PRIMARY KEY, s text)")
    conn.execute("INSERT INTO secrets VALUES (1, %s)", (SECRET,))
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, doc text, pos int, body text)")
    conn.execute(
        "INSERT INTO notes SELECT g, 'doc' || (g % 3), g, 'note number ' || g || ' about topic ' || (g % 5) "
        "FROM generate_series(1, 12) g"
    )
    conn.execute("GRANT SELECT ON notes TO vk_app, vk_worker, vk_admin")
    yield conn


def refused(url: str, statement: str, params: object = None) -> str:
    """The error message of a statement that must fail, run by another role."""
    with connect(url, autocommit=True) as other, pytest.raises(psycopg.Error) as failure:
        other.execute(statement, params)  # type: ignore[arg-type]
    return str(failure.value)


def assert_nothing_leaked(conn: psycopg.Connection, role_url: str) -> None:
    """The secret is nowhere in vk, and the role gained no attribute."""
    for table in ("embeddings", "queue", "recovered", "predictions", "collections", "jobs"):
        assert one(conn, f"SELECT count(*) FROM vk.{table} t WHERE t::text LIKE '%%launch code%%'") == 0, table
    role = role_url.split("//", 1)[1].split("@", 1)[0]
    assert conn.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = %s", (role,)
    ).fetchone() == (False, False, False, False)


def test_an_order_expression_runs_with_its_authors_rights_only(secrets: psycopg.Connection, login: Login) -> None:
    """Finding 1: a vk_worker member's order expression read any table and any server file as the owner."""
    conn = secrets
    conn.execute("SELECT vk.attach('notes', 'id', 'body', NULL)")
    worker = login("vk_worker")
    attacks = {
        "(SELECT string_agg(s, ' | ') FROM public.secrets)": "subquery",
        "pg_read_file('/etc/hostname')": "volatile",
        "doc || pg_sleep(0.2)::text": "volatile",
        "doc || (SELECT count(*) FROM public.secrets)": "subquery",
    }
    for expression, why in attacks.items():
        assert why in refused(worker, "SELECT vk.set_order('notes', %s, 'pos')", (expression,)), expression
    # A function of its own that reads the secrets, declared stable: it passes the checks, and its
    # test run, with the worker's rights, cannot read the table.
    with psycopg.connect(worker, autocommit=True) as w:
        w.execute(
            "CREATE FUNCTION vk_expr.peek(text) RETURNS text LANGUAGE sql STABLE "
            "AS $$ SELECT $1 || (SELECT string_agg(s, ',') FROM public.secrets) $$"
        )
    assert "permission denied for table secrets" in refused(
        worker, "SELECT vk.set_order('notes', 'vk_expr.peek(doc)', 'pos')"
    )
    # The honest order works, and runs as the worker.
    with psycopg.connect(worker, autocommit=True) as w:
        w.execute("SELECT vk.set_order('notes', 'doc', 'pos')")
    owner = one(conn, "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'order_c2'")
    assert owner == worker.split("//", 1)[1].split("@", 1)[0]
    assert one(conn, "SELECT count(*) FROM vk_expr.order_c2()") == 12
    assert_nothing_leaked(conn, worker)


def test_a_metadata_expression_runs_with_its_authors_rights_only(
    secrets: psycopg.Connection, db_url: str, login: Login, encoders: EncoderCache
) -> None:
    """Metadata expressions are held to the text expression's rules: an admin's metadata cannot read a
    table it may not, sleep, or read files, at registration or when a superuser's worker claims a row."""
    conn = secrets
    conn.execute("SELECT vk.attach('notes', 'id', 'body', NULL)")
    admin = login("vk_admin")
    attacks = {
        "jsonb_build_object('s', (SELECT string_agg(s, ' | ') FROM public.secrets))": "subquery",
        "jsonb_build_object('f', pg_read_file('/etc/hostname'))": "volatile",
        "jsonb_build_object('z', pg_sleep(0.2))": "volatile",
    }
    for expression, why in attacks.items():
        assert why in refused(admin, "SELECT vk.set_metadata('notes', %s)", (expression,)), expression
    with psycopg.connect(admin, autocommit=True) as a:
        a.execute(
            "CREATE FUNCTION vk_expr.peek_meta(int) RETURNS jsonb LANGUAGE sql STABLE "
            "AS $$ SELECT jsonb_build_object('s', (SELECT string_agg(s, ',') FROM public.secrets)) $$"
        )
    assert "permission denied for table secrets" in refused(
        admin, "SELECT vk.set_metadata('notes', 'vk_expr.peek_meta(id)')"
    )
    # Nor can an application reach the owner's loopback or its helpers.
    app = login("vk_app")
    for statement in ("SELECT * FROM vk._embed_link()", "SELECT vk._request_embedding(1, 'x', 'postgres', 1)",
                      "SELECT vk._refresh_metadata(1, NULL)"):  # fmt: skip
        assert "permission denied" in refused(app, statement), statement
    # The honest expression works and runs as the admin; the owner's worker writes what it returns.
    with psycopg.connect(admin, autocommit=True) as a:
        a.execute("SELECT vk.set_metadata('notes', $$jsonb_build_object('doc', doc)$$)")
    assert (
        one(conn, "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'meta_c2'")
        == admin.split("//", 1)[1].split("@", 1)[0]
    )
    conn.execute("SELECT vk.add_model('notes', 'minilm@1')")
    drain(db_url, encoders)
    assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE metadata ? 'doc'") == 12
    assert_nothing_leaked(conn, admin)


def test_a_text_expression_changed_in_place_runs_with_its_authors_rights_only(
    secrets: psycopg.Connection, db_url: str, login: Login, encoders: EncoderCache
) -> None:
    """vk.set_text holds a new text expression to vk.attach's rules: an admin cannot make a collection
    embed a table it may not read (a subquery, a volatile call, a function of its own), and a refused
    expression changes nothing: the old one stays, nothing is queued, no text is rewritten."""
    conn = secrets
    conn.execute("SELECT vk.attach('notes', 'id', 'body', 'minilm@1')")
    drain(db_url, encoders)
    admin = login("vk_admin")
    attacks = {
        "body || (SELECT string_agg(s, ' | ') FROM public.secrets)": "subquery",
        "body || pg_read_file('/etc/hostname')": "volatile",
    }
    for expression, why in attacks.items():
        assert why in refused(admin, "SELECT vk.set_text('notes', %s)", (expression,)), expression
    with psycopg.connect(admin, autocommit=True) as a:
        a.execute(
            "CREATE FUNCTION vk_expr.peek_text(text) RETURNS text LANGUAGE sql STABLE "
            "AS $$ SELECT $1 || (SELECT string_agg(s, ',') FROM public.secrets) $$"
        )
    assert "permission denied for table secrets" in refused(
        admin, "SELECT vk.set_text('notes', 'vk_expr.peek_text(body)')"
    )
    assert one(conn, "SELECT text_expression FROM vk.collections WHERE name = 'notes'") == "body"
    assert one(conn, "SELECT count(*) FROM vk.queue") == 0
    # The honest change works, runs as the admin, and the owner's worker embeds what it returns.
    with psycopg.connect(admin, autocommit=True) as a:
        assert one(a, "SELECT vk.set_text('notes', 'upper(body)')") == 12
    assert (
        one(conn, "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'text_c2'")
        == admin.split("//", 1)[1].split("@", 1)[0]
    )
    drain(db_url, encoders)
    assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE body = upper(body)") == 12
    assert_nothing_leaked(conn, admin)


def test_an_admins_expression_cannot_make_it_superuser(
    secrets: psycopg.Connection, db_url: str, login: Login, encoders: EncoderCache
) -> None:
    """Finding 2: a vk_admin member's own function in a text expression ran as the owner (a superuser)
    when the worker claimed a row, and ran ALTER ROLE ... SUPERUSER."""
    conn = secrets
    admin = login("vk_admin")
    name = admin.split("//", 1)[1].split("@", 1)[0]
    conn.execute(f"CREATE SCHEMA evil AUTHORIZATION {name}")
    with psycopg.connect(admin, autocommit=True) as a:
        a.execute("CREATE TABLE evil.t (id int PRIMARY KEY, body text)")
        a.execute(
            "CREATE FUNCTION evil.boom(text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$ BEGIN "
            "EXECUTE format('ALTER ROLE %I SUPERUSER', session_user); RETURN $1; END $$"
        )
        a.execute(
            "CREATE FUNCTION evil.quiet_boom(text) RETURNS text LANGUAGE plpgsql STABLE AS $$ BEGIN "
            "EXECUTE format('ALTER ROLE %I SUPERUSER', session_user); RETURN $1; END $$"
        )
    assert "volatile" in refused(admin, "SELECT vk.attach('evil.t', 'id', 'evil.boom(body)')")
    # Declared stable, on an empty table: it passes registration ...
    with psycopg.connect(admin, autocommit=True) as a:
        a.execute("SELECT vk.attach('evil.t', 'id', 'evil.quiet_boom(body)')")
        a.execute("INSERT INTO evil.t VALUES (1, 'hello')")
    assert one(conn, "SELECT registered_by FROM vk.collections WHERE name = 't'") == name
    # ... and a superuser's worker and status read run it with the admin's rights only.
    drain(db_url, encoders)
    assert conn.execute("SELECT collection, rows FROM vk.status ORDER BY 1").fetchall()
    error = one(conn, "SELECT last_error FROM vk.queue WHERE pk = '1' AND collection_id = vk.collection_id('t')")
    assert "text expression" in error and ("not allowed in a non-volatile" in error or "permission denied" in error)
    assert_nothing_leaked(conn, admin)


def test_one_bad_expression_or_row_fails_alone(
    secrets: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    """Finding 3: one bad text expression stopped every collection, vk.status and the table's own UPDATE."""
    conn = secrets
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, body text)")
    conn.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    for expression, why in {
        "t.body": "FROM-clause entry",  # a table-qualified column: an ordinary mistake
        "body)::text, (SELECT 1": "does not evaluate",  # breaks out of its parentheses
        "(SELECT body FROM t)": "subquery",
        "body || pg_sleep(0.2)::text": "volatile",
    }.items():
        with pytest.raises(psycopg.Error, match=why):
            conn.execute("SELECT vk.attach('t', 'id', %s)", (expression,))
    # An expression that raises for some rows only: refused when such a row is there at attach ...
    conn.execute("INSERT INTO t VALUES (3, 'three')")
    with pytest.raises(errors.InvalidParameterValue, match="fails on rows of t: division by zero"):
        conn.execute("SELECT vk.attach('t', 'id', '(10 / (id - 3))::text || body')")
    conn.execute("DELETE FROM t WHERE id = 3")
    conn.execute("SELECT vk.attach('t', 'id', '(10 / (id - 3))::text || body')")
    # ... and when one comes later, it fails alone.
    conn.execute("INSERT INTO t VALUES (3, 'three')")
    conn.execute("UPDATE t SET body = 'three again' WHERE id = 3")  # the application's writes never fail
    conn.execute("INSERT INTO vk.documents (body) VALUES ('an unrelated collection keeps flowing')")
    for _ in range(5):
        conn.execute("UPDATE vk.queue SET run_after = now() WHERE NOT dead")
        drain(db_url, encoders)
    assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE collection_id = vk.collection_id('t')") == 2
    assert one(conn, "SELECT count(*) FROM vk.embeddings WHERE collection_id = vk.collection_id('documents')") == 1
    dead = conn.execute("SELECT pk, attempts, dead, last_error FROM vk.queue").fetchall()
    assert dead == [("3", 5, True, "text expression: division by zero")]
    status = conn.execute("SELECT collection, dead, error FROM vk.status ORDER BY 1").fetchall()
    assert status == [("documents", 0, None), ("t", 1, "text expression: division by zero")]


def test_vk_status_reports_a_collection_whose_expression_raises_instead_of_failing(
    conn: psycopg.Connection,
) -> None:
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, body text)")
    conn.execute("INSERT INTO t VALUES (1, 'fine')")
    conn.execute("SELECT vk.attach('t', 'id', '(10 / (id - 2))::text || body')")
    conn.execute("INSERT INTO t VALUES (2, 'raises')")
    rows = conn.execute("SELECT collection, rows, error FROM vk.status ORDER BY 1").fetchall()
    assert rows == [("documents", 0, None), ("t", None, "text expression: division by zero")]


def test_an_application_reads_nothing_of_a_collection_whose_table_it_cannot_read(
    secrets: psycopg.Connection, db_url: str, login: Login, encoders: EncoderCache
) -> None:
    """Finding 4: vk_app read the text of every attached table through vk's copies and functions."""
    conn = secrets
    conn.execute("SELECT vk.attach('secrets', 'id', 's')")
    conn.execute("SELECT vk.attach('notes', 'id', 'body')")
    drain(db_url, encoders)
    app = login("vk_app")
    vector = one(conn, "SELECT embedding FROM vk.embeddings WHERE collection_id = vk.collection_id('secrets')")
    with psycopg.connect(app, autocommit=True) as a:
        from pgvector.psycopg import register_vector

        register_vector(a)
        assert one(a, "SELECT count(*) FROM vk.embeddings WHERE body LIKE '%%launch%%'") == 0
        assert one(a, "SELECT count(*) FROM vk.embeddings") == 12  # the notes it may read
        assert [r[0] for r in a.execute("SELECT collection FROM vk.status ORDER BY 1")] == ["documents", "notes"]
        recovered = a.execute("SELECT collection, body FROM vk.recover(%s, 'minilm@1', 5)", (vector,)).fetchall()
        assert recovered and all(c != "secrets" for c, _ in recovered)
    for statement in (
        "SELECT * FROM vk.search('secrets', %s, 3)",
        "SELECT * FROM vk.search_chunks('secrets', %s, 3)",
    ):
        assert "permission denied for collection" in refused(app, statement, (vector,))
    assert "permission denied for collection" in refused(app, "SELECT * FROM vk.similar('secrets', '1', 3)")
    assert "permission denied" in refused(app, "SELECT count(*) FROM vk.model_artifacts")
    assert "permission denied" in refused(app, "SELECT count(*) FROM vk.queue")
    # Granted the table, it reads the collection.
    role = app.split("//", 1)[1].split("@", 1)[0]
    conn.execute(f"GRANT SELECT ON secrets TO {role}")
    with psycopg.connect(app, autocommit=True) as a:
        from pgvector.psycopg import register_vector

        register_vector(a)
        assert one(a, "SELECT body FROM vk.search('secrets', %s, 1)", (np.asarray(vector.to_numpy()),)) == SECRET


def test_a_table_with_row_security_is_refused_unless_the_copy_is_chosen(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE private_rows (id int PRIMARY KEY, owner name, body text)")
    conn.execute("ALTER TABLE private_rows ENABLE ROW LEVEL SECURITY")
    with pytest.raises(errors.FeatureNotSupported, match="row-level security"):
        conn.execute("SELECT vk.attach('private_rows', 'id', 'body')")
    conn.execute("SELECT vk.attach('private_rows', 'id', 'body', row_security => 'copy')")
    assert one(conn, "SELECT copies_row_security FROM vk.collections WHERE name = 'private_rows'") is True


def test_roles_cannot_read_secrets_through_adoption_or_jobs(secrets: psycopg.Connection, login: Login) -> None:
    conn = secrets
    conn.execute("CREATE TABLE secret_vectors (id int PRIMARY KEY, v vector(3))")
    conn.execute("INSERT INTO secret_vectors VALUES (1, '[1,2,3]')")
    for group in ("vk_worker", "vk_admin"):
        url = login(group)
        assert "permission denied" in refused(url, "SELECT vk.adopt('secret_vectors', 'id', 'v', 'stolen')")
        message = refused(url, "SELECT vk.attach('secrets', 'id', 's')")
        assert "permission denied" in message or "may not SELECT column(s) id, s of secrets" in message
        # A job's parameters are data, never SQL: checked against the kind when queued.
        assert 'tfidf has no parameter "text"' in refused(
            url, "SELECT vk.train('m', 'tfidf', '{\"text\": \"(SELECT s FROM secrets)\"}', 'documents')"
        )
        assert 'unknown model "(SELECT s FROM secrets)"' in refused(
            url, "SELECT vk.train('m', 'umap', '{\"source\": \"(SELECT s FROM secrets)\"}', 'documents')"
        )
        assert one(conn, "SELECT count(*) FROM vk.jobs") == 0
        assert_nothing_leaked(conn, url)


def test_a_worker_role_serves_a_collection_it_cannot_read(
    secrets: psycopg.Connection, db_url: str, login: Login, encoders: EncoderCache
) -> None:
    """Workers read texts through the authors' functions: no grant on the tables is needed."""
    conn = secrets
    conn.execute("SELECT vk.attach('secrets', 'id', 's')")
    worker = login("vk_worker")
    Worker(worker, WorkerSettings(retry=FAST_RETRY), encoders=encoders).run(until_idle=True)
    assert one(conn, "SELECT body FROM vk.embeddings WHERE collection_id = vk.collection_id('secrets')") == SECRET
    assert "permission denied" in refused(worker, "SELECT * FROM secrets")


def test_an_application_cannot_retire_measure_or_prune_versions(secrets: psycopg.Connection, login: Login) -> None:
    """vk._space_metrics and vk.retire run as their owner (they read vectors, drop indexes): only workers
    (keep-N after training) and operators may call them; an application is refused, and loses nothing."""
    conn = secrets
    app = login("vk_app")
    c, m = "vk._collection('documents')", "vk.model('minilm@1')"
    for statement in (
        f"SELECT vk._space_metrics({c}, {m})",
        "SELECT vk.retire('minilm@1', 'documents')",
        "SELECT vk.keep_newest_v1(vk.collection_id('documents'), 'minilm', 1)",
        "SELECT vk.unschedule('minilm')",
        "SELECT vk.activate('documents', 'minilm@1', '{\"distance_spread\": 0}')",
    ):
        assert "permission denied" in refused(app, statement), statement
    assert one(conn, "SELECT count(*) FROM vk.collection_models") >= 1
    assert one(conn, "SELECT status FROM vk.models WHERE name = 'minilm'") == "active"


def test_recovered_text_is_read_only_by_who_may_read_the_adopted_table(conn: psycopg.Connection, login: Login) -> None:
    """Text recovered for a vector-only table (vk.recovered_text) follows that table, like its vectors."""
    conn.execute("CREATE TABLE hidden_vectors (id int PRIMARY KEY, v vector(384))")
    conn.execute("INSERT INTO hidden_vectors VALUES (1, %s)", (np.ones(384, dtype=np.float32),))
    conn.execute("SELECT vk.adopt('hidden_vectors', 'id', 'v', 'hidden')")
    conn.execute(
        "INSERT INTO vk.recovered (adopted_id, pk, method, body, similarity, model_id, details) "
        "SELECT a.id, '1', 'edit-search', %s, 0.9, a.model_id, '{\"best\": true}' FROM vk.adopted a",
        (SECRET,),
    )
    assert one(conn, "SELECT body FROM vk.recovered_text('hidden_vectors')") == SECRET
    app = login("vk_app")
    with psycopg.connect(app, autocommit=True) as a:
        assert one(a, "SELECT count(*) FROM vk.recovered_text('hidden_vectors')") == 0
        assert one(a, "SELECT count(*) FROM vk.recovered") == 0
    role = app.split("//", 1)[1].split("@", 1)[0]
    conn.execute(f"GRANT SELECT ON hidden_vectors TO {role}")
    with psycopg.connect(app, autocommit=True) as a:
        row = a.execute("SELECT body, method, model FROM vk.recovered_text('hidden_vectors')").fetchone()
        assert row == (SECRET, "edit-search", None)
