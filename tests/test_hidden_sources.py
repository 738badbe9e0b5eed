"""Nothing tells a role what a source table hides, tried by real login roles (members of vk_app,
vk_worker; none a superuser): not the jobs over that table (snapshot, progress, log, error), not their
MLflow export, and not a model version trained on it (vk.embed, searches, recovery, hints)."""

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

from helpers import one, serve
from vectorkeep.cli import main
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.jobs.runner import JobContext, JobOutcome, JobRunner

Login = Callable[[str], str]

# Keys and words found nowhere but in the table of secrets: any of them seen by a role that may not
# read that table is a leak.
SECRETS = [
    ("agent-ostrich-1", "zanzibar quokka falafel"),
    ("agent-ostrich-2", "zanzibar quokka marzipan"),
    ("agent-ostrich-3", "quokka falafel marzipan"),
    ("agent-ostrich-4", "zanzibar falafel marzipan"),
]
MARKERS = ("ostrich", "zanzibar", "quokka", "falafel", "marzipan")
LEAK = "|".join(MARKERS)


def fail_quoting_a_row(ctx: JobContext) -> JobOutcome:
    """A train job that fails the way a bad row fails one: its log and error quote the row."""
    row = ctx.conn.execute("SELECT id, s FROM secrets ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    logging.getLogger(__name__).info("reading row %s: %s", *row)
    raise ValueError(f"cannot tokenise row {row[0]}: {row[1]!r}")


@dataclass(frozen=True)
class Hidden:
    """A database with a table of secrets (attached, a version trained on it, a failed job over it) and
    a table of notes every vk role may read (re-embedded with minilm@1 and with the secret version)."""

    url: str
    trained: int  # train sectf on secrets
    reembed_secrets: int  # the re-embed of secrets the train job queued
    failed: int  # a train job over secrets whose error quotes a row
    notes_minilm: int  # re-embed notes with minilm@1: anyone who may read notes sees it
    notes_sectf: int  # re-embed notes with sectf@1: notes readers who may not read secrets do not
    recover: int  # recover an adopted table's text (no collection: follows the adopted table)

    @property
    def over_secrets(self) -> set[int]:
        return {self.trained, self.reembed_secrets, self.failed, self.notes_sectf}


@pytest.fixture
def hidden(conn: psycopg.Connection, db_url: str, encoders: EncoderCache) -> Iterator[Hidden]:
    conn.execute("CREATE TABLE secrets (id text PRIMARY KEY, s text)")
    conn.cursor().executemany("INSERT INTO secrets VALUES (%s, %s)", SECRETS)
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    conn.execute(
        "INSERT INTO notes SELECT g, 'note number ' || g || ' about topic ' || (g % 5) FROM generate_series(1, 12) g"
    )
    conn.execute("GRANT SELECT ON notes TO vk_app, vk_worker, vk_admin")
    conn.execute("SELECT vk.attach('secrets', 'id', 's', NULL)")
    conn.execute("SELECT vk.attach('notes', 'id', 'body', NULL)")
    trained = one(conn, "SELECT vk.train('sectf', 'tfidf', %s, 'secrets')", (Jsonb({"dim": 2, "min_df": 1}),))
    notes_minilm = one(conn, "SELECT vk.reembed('notes', 'minilm@1')")
    serve(db_url, encoders)
    reembed_secrets = one(conn, "SELECT (metrics ->> 'reembed_job')::bigint FROM vk.jobs WHERE id = %s", (trained,))
    notes_sectf = one(conn, "SELECT vk.reembed('notes', 'sectf@1')")
    serve(db_url, encoders)
    failed = one(conn, "SELECT vk.train('broken', 'tfidf', '{}', 'secrets')")
    JobRunner(db_url, handlers={"train": fail_quoting_a_row}).run(until_idle=True)
    conn.execute("CREATE TABLE legacy (id int PRIMARY KEY, v vector(384))")
    conn.execute("INSERT INTO legacy VALUES (1, array_fill(0.1, ARRAY[384])::vector)")
    conn.execute("SELECT vk.adopt('legacy', 'id', 'v', 'legacy')")
    recover = one(conn, "SELECT vk.recover_adopted('legacy', 'nearest', 'minilm@1')")  # stays queued

    statuses: dict[int, str] = dict(conn.execute("SELECT id, status FROM vk.jobs").fetchall())
    assert statuses == {
        trained: "succeeded",
        reembed_secrets: "succeeded",
        notes_minilm: "succeeded",
        notes_sectf: "succeeded",
        failed: "failed",
        recover: "queued",
    }
    # What a job over secrets records: the largest key, the row count, a row's text in the error and log.
    recorded = conn.execute(
        "SELECT t.snapshot, f.error, f.log_tail FROM vk.jobs t, vk.jobs f WHERE t.id = %s AND f.id = %s",
        (trained, failed),
    ).fetchone()
    assert recorded is not None
    snapshot, error, log_tail = recorded
    assert snapshot["max_key"] == "agent-ostrich-4" and snapshot["rows"] == len(SECRETS)
    assert "zanzibar" in error and "zanzibar" in log_tail
    yield Hidden(db_url, trained, reembed_secrets, failed, notes_minilm, notes_sectf, recover)


def visible_jobs(url: str) -> set[int]:
    with connect(url, autocommit=True) as c:
        return {job_id for (job_id,) in c.execute("SELECT id FROM vk.jobs")}


def leaked_jobs(url: str) -> list[int]:
    with connect(url, autocommit=True) as c:
        return [job_id for (job_id,) in c.execute("SELECT id FROM vk.jobs j WHERE j::text ~* %s", (LEAK,))]


def test_jobs_show_a_role_only_what_it_may_read(hidden: Hidden, conn: psycopg.Connection, login: Login) -> None:
    """Finding A: a vk_app login that may not read secrets read the jobs over it: their snapshot (largest
    key, row count), log and error (a row's text)."""
    app = login("vk_app")  # notes only
    assert visible_jobs(app) == {hidden.notes_minilm}
    assert leaked_jobs(app) == []
    with connect(app, autocommit=True) as c:
        assert c.execute("SELECT * FROM vk.jobs WHERE id = %s", (hidden.failed,)).fetchall() == []
        # vk.predicted's hint reads vk.jobs too: a hidden job is no job.
        with pytest.raises(errors.NoDataFound, match="no such job"):
            c.execute("SELECT * FROM vk.predicted(%s)", (hidden.failed,))

    # A role that may read secrets sees the jobs over it, and the notes' re-embed with the version trained there.
    reader = login("vk_app")
    conn.execute(f"GRANT SELECT ON secrets TO {reader.split('//', 1)[1].split('@', 1)[0]}")
    assert visible_jobs(reader) == {hidden.notes_minilm} | hidden.over_secrets
    # The recover job follows the adopted table.
    adopter = login("vk_app")
    conn.execute(f"GRANT SELECT ON legacy TO {adopter.split('//', 1)[1].split('@', 1)[0]}")
    assert visible_jobs(adopter) == {hidden.notes_minilm, hidden.recover}
    # Operators see every job; so does the owner.
    everything = hidden.over_secrets | {hidden.notes_minilm, hidden.recover}
    assert visible_jobs(login("vk_worker")) == everything
    assert visible_jobs(login("vk_admin")) == everything
    assert visible_jobs(hidden.url) == everything

    # Once secrets is detached, its jobs are over no table any more: operators only.
    conn.execute("SELECT vk.detach('secrets')")
    assert visible_jobs(reader) == {hidden.notes_minilm}


def test_an_mlflow_export_carries_only_what_its_role_may_read(
    hidden: Hidden, login: Login, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding A: `vectorkeep jobs export-mlflow` by a vk_app login copied the jobs over secrets into
    MLflow (the snapshot as a tag, log_tail.txt, error.txt)."""
    pytest.importorskip("mlflow", reason="pip install -e '.[test]' (mlflow-skinny)")
    from vectorkeep.app import mlflow_export

    app = login("vk_app")
    monkeypatch.chdir(tmp_path)  # the runs' artifacts land in ./mlruns
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["--database-url", app, "jobs", "export-mlflow", "--tracking-uri", tracking, "--json"]
    assert main(args) == 0
    [summary] = json.loads(capsys.readouterr().out)
    assert {run["job"] for run in summary["runs"]} == {hidden.notes_minilm}
    with pytest.raises(LookupError, match=f"no job {hidden.failed} that this role may read"):
        mlflow_export.export_jobs(app, tracking, job_ids=[hidden.failed])
    stored = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "log_tail.txt" for path in stored)  # the notes job's, exported
    for path in stored:
        content = path.read_bytes().lower()
        assert not [m for m in MARKERS if m.encode() in content], path

    # An operator's export has them all: the check above would have seen them.
    operator = tmp_path / "operator"
    operator.mkdir()
    monkeypatch.chdir(operator)
    results = mlflow_export.export_jobs(login("vk_worker"), f"sqlite:///{operator / 'mlflow.db'}")
    assert {r.job_id for r in results} == hidden.over_secrets | {hidden.notes_minilm}
    assert any(b"zanzibar" in path.read_bytes() for path in operator.rglob("error.txt"))


@pytest.mark.needs_dblink
def test_a_version_trained_on_a_hidden_table_answers_only_who_may_read_it(
    hidden: Hidden, conn: psycopg.Connection, login: Login
) -> None:
    """Finding B: vk.embed answered any role with any ready version, so a vk_app login learned which words
    occur in secrets from a tfidf version trained there (a norm of 1 or 0); hints named that version."""
    app = login("vk_app")  # notes only
    with connect(app, autocommit=True) as c:
        for statement in (
            "SELECT vk.embed('sectf@1', 'zanzibar')",
            "SELECT vk.embed('sectf', 'zanzibar')",
            "SELECT * FROM vk.search('notes', 'topic', 5, 'sectf@1')",  # refused before 'not embedded'
            "SELECT * FROM vk.search('notes', '[1, 0]', 5, 'sectf@1')",
            "SELECT * FROM vk.search_chunks('notes', 'topic', 5, 'sectf@1')",
            "SELECT * FROM vk.hybrid_search('notes', 'topic', 5, model => 'sectf@1')",
            "SELECT * FROM vk.recover('[1, 0]', 'sectf@1')",
            "SELECT vk.model('sectf@1')",
        ):
            with pytest.raises(errors.InsufficientPrivilege) as refused:
                c.execute(statement)
            assert "may not read the table it was trained on" in str(refused.value), statement
            hint = refused.value.diag.message_hint or ""
            assert "GRANT SELECT" in hint and "sectf" not in hint, statement
        # Unknown models: the hint lists what this role may use, never the secret version.
        with pytest.raises(errors.UndefinedObject) as unknown:
            c.execute("SELECT vk.embed('nosuch', 'x')")
        hint = unknown.value.diag.message_hint or ""
        assert "minilm@1" in hint and "sectf" not in hint
        assert c.execute(
            "SELECT vk._may_use(m, current_user) FROM vk.models m WHERE m.name IN ('sectf', 'minilm') ORDER BY m.name"
        ).fetchall() == [(True,), (False,)]
        # The version of notes it may use still answers (no worker here: that is the next error).
        with pytest.raises(errors.ObjectNotInPrerequisiteState, match="no worker"):
            c.execute("SELECT vk.embed('minilm@1', 'topic')")

    # A role granted secrets, and an operator, get past the check: with no worker running, to 55000.
    reader = login("vk_app")
    conn.execute(f"GRANT SELECT ON secrets TO {reader.split('//', 1)[1].split('@', 1)[0]}")
    for url in (reader, login("vk_worker")):
        with connect(url, autocommit=True) as c, pytest.raises(errors.ObjectNotInPrerequisiteState, match="no worker"):
            c.execute("SELECT vk.embed('sectf@1', 'zanzibar')")

    # Once secrets is detached, nothing says any more who may read what sectf learned: operators only.
    conn.execute("SELECT vk.detach('secrets')")
    with connect(reader, autocommit=True) as c, pytest.raises(errors.InsufficientPrivilege):
        c.execute("SELECT vk.embed('sectf@1', 'zanzibar')")
    with connect(login("vk_admin"), autocommit=True) as c:
        assert c.execute("SELECT vk._may_use(vk.model('sectf@1'), current_user)").fetchone() == (True,)
