"""Search and recovery on a streaming hot standby of the test server (README, "Beyond one machine").

The standby is made with the embedded server's own pg_basebackup -R (initdb's
pg_hba.conf trusts local replication connections, wal_level is replica and
max_wal_senders 10 by default, so the session's server needs no change),
started on a Unix socket of its own, and stopped and deleted whatever happens.
"""

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import numpy as np
import psycopg
import pytest

from helpers import one, wait_for
from vectorkeep.db import embedded
from vectorkeep.db.connect import connect

DIM = 16


def _bin(name: str) -> str:
    return str(embedded.psql_path().parent / name)


def _run_as_server_user(program: str, *options: str, log: Path | None = None) -> None:
    """A server binary, as the user the embedded server runs as (root hands it to an unprivileged one)."""
    args = [_bin(program), *options]
    user = "embedded_postgres" if os.geteuid() == 0 else None
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, user=user, check=False)
    if done.returncode != 0:
        server_log = log.read_text() if log is not None and log.exists() else ""
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}{server_log}")


def _socket_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["host"][0]


@pytest.fixture
def standby_url(embedded_pgdata: Path | None, server_url: str, db_url: str) -> Iterator[str]:
    """The test database, read on a hot standby streaming from the session's server."""
    if embedded_pgdata is None:
        pytest.skip("needs the embedded server (its binaries and a data folder it may copy)")
    folder = embedded_pgdata.parent / "standby"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    if os.geteuid() == 0:
        account = pwd.getpwnam("embedded_postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
    primary = urlsplit(server_url)
    try:
        _run_as_server_user(
            "pg_basebackup", "-h", _socket_of(server_url), "-U", primary.username or "postgres",
            "-D", str(folder), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        # The primary's socket lives in its data folder, so the copy holds its socket lock and log.
        (folder / ".s.PGSQL.5432.lock").unlink(missing_ok=True)
        (folder / "log").unlink(missing_ok=True)
        _run_as_server_user(
            "pg_ctl", "-D", str(folder), "-w", "-t", "20", "-l", str(folder / "log"),
            "-o", f"-k {folder} -h ''", "start", log=folder / "log",
        )  # fmt: skip
        yield urlunsplit(urlsplit(db_url)._replace(query=urlencode({"host": str(folder)})))
    finally:
        if (folder / "postmaster.pid").exists():
            _run_as_server_user("pg_ctl", "-D", str(folder), "-w", "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def _write_vectors(conn: psycopg.Connection, first: int, last: int) -> None:
    """Rows of table `synth` and their vectors, written directly as an external encoder would."""
    conn.execute(f"INSERT INTO synth SELECT g, 'row ' || g FROM generate_series({first}, {last}) g")
    conn.execute(
        f"""
        INSERT INTO vk.embeddings (collection_id, pk, model_id, embedding, body, text_sha256)
        SELECT c.id, g::text, c.default_model_id,
               (SELECT array_agg(sin(g * 7 + d)) FROM generate_series(1, {DIM}) d)::vector,
               'row ' || g, sha256(convert_to('row ' || g, 'UTF8'))
        FROM vk.collections c, generate_series({first}, {last}) g WHERE c.name = 'synth'
        """
    )
    conn.execute("DELETE FROM vk.queue")


def _caught_up(primary: psycopg.Connection, standby: psycopg.Connection) -> None:
    target = one(primary, "SELECT pg_current_wal_lsn()")
    wait_for(
        lambda: bool(one(standby, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))),
        10,
        f"the standby to replay up to {target}",
    )


def test_search_similar_and_recover_run_on_a_hot_standby(conn: psycopg.Connection, standby_url: str) -> None:
    conn.execute("CREATE TABLE synth (id int PRIMARY KEY, body text)")
    conn.execute(f"INSERT INTO vk.models (name, version, kind, dim) VALUES ('synth_ext', 1, 'external', {DIM})")
    conn.execute("SELECT vk.attach('synth', 'id', 'body', 'synth_ext@1')")
    with connect(standby_url, autocommit=True) as standby:
        assert one(standby, "SELECT pg_is_in_recovery()") is True
        # Written on the primary after the standby started.
        _write_vectors(conn, 1, 200)
        _caught_up(conn, standby)
        assert one(standby, "SELECT count(*) FROM vk.embeddings") == 200

        query = np.sin(np.arange(1, DIM + 1) + 42 * 7).astype(np.float32)  # row 42's vector
        search = "SELECT pk, distance FROM vk.search('synth', %s, 5)"
        on_standby = standby.execute(search, (query,)).fetchall()
        assert on_standby[0] == ("42", pytest.approx(0.0, abs=1e-6))
        assert [r[0] for r in on_standby] == [r[0] for r in conn.execute(search, (query,)).fetchall()]
        similar = "SELECT pk FROM vk.similar('synth', '42', 3)"
        assert standby.execute(similar).fetchall() == conn.execute(similar).fetchall()
        recovered = standby.execute("SELECT collection, pk, body FROM vk.recover(%s, 'synth_ext', 1)", (query,))
        assert recovered.fetchall() == [("synth", "42", "row 42")]

        # A row written now is found on the standby once replayed.
        _write_vectors(conn, 201, 201)
        _caught_up(conn, standby)
        newest = np.sin(np.arange(1, DIM + 1) + 201 * 7).astype(np.float32)
        assert standby.execute(search, (newest,)).fetchone() == ("201", pytest.approx(0.0, abs=1e-6))

        # A text query this role asked on the primary within the hour is in the cache (vk.embed_cache, as
        # a worker's answer leaves it), which the standby replays: served there with no worker.
        conn.execute(
            "INSERT INTO vk.embed_cache (model_id, text_sha256, embedding, asked_by) "
            "VALUES ((vk.model('synth_ext@1')).id, sha256(convert_to('row 42', 'UTF8')), %s, session_user)",
            (query,),
        )
        _caught_up(conn, standby)
        assert standby.execute("SELECT pk FROM vk.search('synth', 'row 42', 1)").fetchall() == [("42",)]

        # What needs the primary fails at once, saying so: a text query not in the cache must queue a
        # request for a worker (on the primary) ...
        uncached = "SELECT * FROM vk.search('synth', 'row 7', 3)"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="cannot be encoded on a read replica"):
            standby.execute(uncached)
        # Queuing a job writes vk.jobs.
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only transaction"):
            standby.execute("SELECT vk.train('other', 'tfidf', '{}', 'synth')")
