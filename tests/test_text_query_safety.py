"""Text queries under attack and load, with real login roles (members of vk_app and vk_worker,
none a superuser): the protocol cannot race, waits without spinning, dies with its caller,
bounds what one role may ask, serves roles in turn, and tells no role what another asked.
And the embedding queue serves the rows an application writes before a backfill's."""

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import errors

from helpers import one, running_lane, wait_for
from vectorkeep.db.connect import connect
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.text_queries import TextQueryLane

pytestmark = pytest.mark.needs_dblink

EMBED = "SELECT vk.embed('minilm@1', %s)"
LOOPBACKS = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vectorkeep text query'"


def fresh(label: str) -> str:
    """A text nobody asked before, so it is never a cache hit."""
    return f"{label}: a text never asked before ({uuid.uuid4()})"


@contextmanager
def stuck_lane(url: str) -> Iterator[None]:
    """A worker's session that looks like a lane and never answers (a lane loading a model): requests wait."""
    with psycopg.connect(url, autocommit=True, application_name="vectorkeep interactive stuck"):
        yield


def waiting_requests(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as owner:
        return int(one(owner, "SELECT count(*) FROM vk.embed_requests WHERE answer IS NULL AND error IS NULL"))


def in_thread(url: str, text: str, errors_seen: list[str], timeout: str = "3s") -> threading.Thread:
    """A text query that waits in a thread of its own; its error's SQLSTATE, if any, is collected."""

    def ask() -> None:
        with connect(url, autocommit=True) as c:
            c.execute(f"SET vk.embed_timeout = '{timeout}'")
            try:
                c.execute(EMBED, (text,))
            except psycopg.Error as exc:
                errors_seen.append(exc.sqlstate or "")

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    return thread


def test_fresh_sessions_always_find_their_answer(
    db_url: str, login: Callable[[str], str], lane_encoders: EncoderCache
) -> None:
    """The lane used to delete a request before its caller had read it: P0002 in up to half of fresh
    sessions. The answer is now written on the request, which only its caller deletes."""
    app = login("vk_app")
    failures: list[str] = []
    with running_lane(db_url, lane_encoders):
        for i in range(30):
            with connect(app, autocommit=True) as c:
                try:
                    assert one(c, EMBED, (fresh(f"session {i}"),)) is not None
                except psycopg.Error as exc:
                    failures.append(f"{exc.sqlstate}: {exc}")
    assert failures == []
    assert waiting_requests(db_url) == 0


def test_the_cache_tells_no_role_what_another_asked(
    db_url: str, login: Callable[[str], str], lane_encoders: EncoderCache
) -> None:
    alice, mallory = login("vk_app"), login("vk_app")
    secret = "alice's query: the merger with Initech closes on Friday"
    with running_lane(db_url, lane_encoders), connect(alice, autocommit=True) as c:
        asked = one(c, EMBED, (secret,))
    # No worker now: only a cache hit could answer, and mallory's guess is a miss like any other.
    with connect(mallory, autocommit=True) as c:
        for guess in (secret, "alice's query: something else entirely"):
            with pytest.raises(errors.ObjectNotInPrerequisiteState, match="no worker is running"):
                c.execute(EMBED, (guess,))
    with connect(alice, autocommit=True) as c:
        assert one(c, EMBED, (secret,)) == asked  # her own repeat is still a hit


def test_a_cancelled_text_query_leaves_no_link_open_and_is_prompt(db_url: str, login: Callable[[str], str]) -> None:
    """A role that may call dblink itself (the case vk closes the link after each query for) must not
    find the owner's connection open after a cancel; statement_timeout fires on time."""
    app = login("vk_app")
    role = app.split("//", 1)[1].split("@", 1)[0]
    with psycopg.connect(db_url, autocommit=True) as owner:
        owner.execute(f"GRANT USAGE ON SCHEMA vk_dblink TO {role}")
    with stuck_lane(db_url), connect(app, autocommit=True) as c:
        c.execute("SET statement_timeout = '300ms'")
        started = time.monotonic()
        with pytest.raises(errors.QueryCanceled):
            c.execute(EMBED, (fresh("cancelled"),))
        assert time.monotonic() - started < 0.45  # within 100 ms of the timeout, plus the round trip
        c.execute("SET statement_timeout = 0")
        assert one(c, "SELECT vk_dblink.dblink_get_connections()") is None
        with pytest.raises(psycopg.Error, match=r"could not find connection|password"):
            c.execute("SELECT * FROM vk_dblink.dblink('vk_embed', 'SELECT current_user') AS t(u name)")
        # Its backend is gone, and with it the request's owner (a lane deletes the request at its next claim).
        with psycopg.connect(db_url, autocommit=True) as owner:
            wait_for(lambda: one(owner, LOOPBACKS) == 0, 1, "the loopback backend to end")


CLIENT = """
import sys, psycopg
c = psycopg.connect(sys.argv[1], autocommit=True)
c.execute("SET vk.embed_timeout = '30s'")
c.execute("SELECT vk.embed('minilm@1', %s)", (sys.argv[2],))
"""


def test_requests_die_with_their_killed_callers(
    db_url: str, login: Callable[[str], str], lane_encoders: EncoderCache
) -> None:
    app = login("vk_app")
    role = app.split("//", 1)[1].split("@", 1)[0]
    backends = f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{role}'"
    with stuck_lane(db_url), psycopg.connect(db_url, autocommit=True) as owner:
        clients = [subprocess.Popen([sys.executable, "-c", CLIENT, app, fresh(f"killed {i}")]) for i in range(6)]
        try:
            wait_for(lambda: waiting_requests(db_url) == 6, 30, "six waiting text queries")
        finally:
            for client in clients:
                client.kill()
                client.wait()
        killed = time.monotonic()
        wait_for(lambda: one(owner, backends) == 0 and one(owner, LOOPBACKS) == 0, 3, "callers and loopbacks to go")
        assert time.monotonic() - killed < 1.0
    # The next lane deletes their requests (and their texts) at its first claim, answering none.
    with running_lane(db_url, lane_encoders) as lane:
        wait_for(lambda: waiting_requests(db_url) == 0, 2, "the killed callers' requests to go")
        assert lane.answered == 0


def test_waits_are_bounded_and_a_lane_cannot_be_impersonated(db_url: str, login: Callable[[str], str]) -> None:
    app, other = login("vk_app"), login("vk_app")
    with connect(app, autocommit=True) as c:
        c.execute("SET vk.embed_timeout = '10min'")
        with pytest.raises(errors.InvalidParameterValue, match="outside 0 to 60 seconds"):
            c.execute(EMBED, ("x",))
    # A session that names itself like a lane is not one unless its role runs workers.
    with (
        psycopg.connect(other, autocommit=True, application_name="vectorkeep interactive spoof"),
        connect(app, autocommit=True) as c,
        pytest.raises(errors.ObjectNotInPrerequisiteState),
    ):
        c.execute(EMBED, (fresh("spoofed"),))


def test_one_role_cannot_crowd_out_another(db_url: str, login: Callable[[str], str]) -> None:
    """At most 8 requests of one login role wait at once; a lane takes each role's oldest in turn,
    within a text budget, so a burst or a huge text of one role delays another's query by one batch."""
    a, b, c = login("vk_app"), login("vk_app"), login("vk_app")
    worker = login("vk_worker")
    seen: list[str] = []
    with stuck_lane(db_url):
        threads = [in_thread(a, fresh(f"a{i}"), seen) for i in range(8)]
        wait_for(lambda: waiting_requests(db_url) == 8, 20, "role a's eight requests")
        with connect(a, autocommit=True) as conn, pytest.raises(errors.ConfigurationLimitExceeded, match="8 text"):
            conn.execute(EMBED, (fresh("a, one too many"),))
        b_text = fresh("b")
        threads.append(in_thread(b, b_text, seen))
        wait_for(lambda: waiting_requests(db_url) == 9, 20, "role b's request")
        threads.append(in_thread(c, "c " * 9_990, seen))
        wait_for(lambda: waiting_requests(db_url) == 10, 20, "role c's long request")
        with psycopg.connect(worker) as w:
            two = [text for (text,) in w.execute("SELECT input FROM vk.claim_embed_requests_v1(2)")]
            w.rollback()
            # b's turn beside one of a's (UPDATE ... RETURNING answers in no particular order)
            assert len(two) == 2 and b_text in two and next(t for t in two if t != b_text).startswith("a")
            # Each role's first in turn, within the budget (20,000 characters): c's 19,980 characters wait
            # for a batch of their own, when theirs is the oldest request, and nothing after them goes first.
            batch = [text for (text,) in w.execute("SELECT input FROM vk.claim_embed_requests_v1(16)")]
            w.rollback()
            assert len(batch) == 2 and {t[0] for t in batch} == {"a", "b"}
        for thread in threads:
            thread.join(10)
    assert seen == ["57014"] * 10  # nobody answered: each timed out, none waited past its timeout


def test_rows_the_application_writes_are_claimed_before_a_backfill(
    conn: psycopg.Connection, login: Callable[[str], str]
) -> None:
    """A new version's backfill queued 2,000 rows before the application wrote two: the claim serves
    the two first, and a single row before the rows of a bulk statement written before it."""
    conn.execute(
        "INSERT INTO vk.model_kinds (kind, role, trainable, loadable, description) "
        "VALUES ('words-test', 'encoder', false, true, 'claims only: never encoded here')"
    )
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('words', 1, 'words-test', 8)")
    conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('words', 2, 'words-test', 8)")
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    conn.execute("INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 2000) g")
    conn.execute("SELECT vk.attach('notes', 'id', 'body', 'words@1')")
    conn.execute("DELETE FROM vk.queue")  # as if embedded
    conn.execute("SELECT vk.add_model('notes', 'words@2')")  # a backfill of 2,000 rows
    app, worker = login("vk_app"), login("vk_worker")
    role = app.split("//", 1)[1].split("@", 1)[0]
    conn.execute(f"GRANT SELECT, INSERT ON notes TO {role}")
    with psycopg.connect(app, autocommit=True) as a:
        a.execute("INSERT INTO notes SELECT g, 'bulk ' || g FROM generate_series(10001, 11001) g")
        a.execute("INSERT INTO notes VALUES (5001, 'fresh'), (5002, 'fresh too')")
    with psycopg.connect(worker) as w:
        claimed = w.execute("SELECT pk FROM vk.claim_v1(4)").fetchall()
        w.rollback()
        assert sorted(pk for (pk,) in claimed) == ["5001", "5001", "5002", "5002"]  # both versions of each
        claimed = w.execute("SELECT pk FROM vk.claim_v1(2006)").fetchall()
        w.rollback()
        # Then the bulk statement's rows, all before any of the backfill's.
        assert len(claimed) == 2006
        assert {pk for (pk,) in claimed} == {"5001", "5002"} | {str(g) for g in range(10001, 11002)}


def test_a_workers_lane_embeds_new_rows_while_bulk_rows_wait(db_url: str, lane_encoders: EncoderCache) -> None:
    """A worker's main loop may hold a long batch of a backfill or a bulk load; its lane embeds a row the
    application wrote meanwhile, and leaves the bulk rows to the main loop."""
    with psycopg.connect(db_url, autocommit=True) as owner:
        owner.execute("INSERT INTO vk.documents (body) SELECT 'bulk row ' || g FROM generate_series(1, 1001) g")
        stop = threading.Event()
        lane = TextQueryLane(db_url, stop, encoders=lane_encoders, live_rows=True)
        thread = threading.Thread(target=lane.run, daemon=True)
        thread.start()
        try:
            assert lane.ready.wait(60)
            pk = one(owner, "INSERT INTO vk.documents (body) VALUES ('a cat asleep on the windowsill') RETURNING id")
            vectors = "SELECT count(*) FROM vk.embeddings WHERE pk = %s"
            wait_for(lambda: one(owner, vectors, (str(pk),)) == 1, 10, "the new row's vector")
            assert one(owner, "SELECT count(*) FROM vk.queue WHERE priority = 1") == 1001  # the bulk rows wait
        finally:
            stop.set()
            thread.join(30)
        # Counted once its batch returned, which is after the commit that the wait above saw.
        assert lane.rows_embedded == 1
