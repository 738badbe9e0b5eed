"""Helpers the tests share: run a worker, run the CLI, read vectors back."""

import argparse
import hashlib
import io
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from typing import Any
from unittest import mock

import psycopg
from psycopg.rows import dict_row

from vectorkeep.workers.embed import RetryPolicy
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.text_queries import TextQueryLane
from vectorkeep.workers.worker import Worker, WorkerSettings

FAST_RETRY = RetryPolicy(max_attempts=3, backoff_seconds=0.0)


def drain(url: str, encoders: EncoderCache, **settings: object) -> Worker:
    """Run an in-process worker until no queued row is ready."""
    worker = Worker(url, WorkerSettings(**{"retry": FAST_RETRY, **settings}), encoders=encoders)  # type: ignore[arg-type]
    worker.run(until_idle=True)
    return worker


def serve(url: str, encoders: EncoderCache, lease: float = 30.0) -> list[int]:
    """A worker's whole service (queue + jobs) until nothing is left to do."""
    from vectorkeep.workers.service import Service

    service = Service(url, WorkerSettings(retry=FAST_RETRY), lease_seconds=lease, encoders=encoders)
    return service.run(until_idle=True).jobs


def save_untrained_inverter(folder: Any) -> Any:
    """A tiny, untrained vec2text inverter for minilm@1, saved the way vec2text saves one
    (its T5 in a local folder); returns the inverter and the folder to register."""
    from vectorkeep.workers.families.text.sentence_transformers import MINILM
    from vectorkeep.workers.families.vec2text import model as inverter_model

    original = inverter_model.build(MINILM, {"seed": 3})
    original.encoder_decoder.save_pretrained(folder / "t5")
    original.tokenizer.save_pretrained(folder / "t5")
    original.config.model_name_or_path = str(folder / "t5")
    original.save_pretrained(folder / "inverter")
    return original, folder / "inverter"


def cli(url: str, *args: str, process: bool = False, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the vectorkeep command line against a database (VECTORKEEP_DATABASE_URL=url): its exit status,
    stdout and stderr (log lines included), as a process of its own would give them.

    By default in this process (vectorkeep.cli.main: no interpreter to start, no torch to import again),
    which keeps nothing of the call (see in_process); not from two threads at once. With process=True in
    a new Python process (`python -m vectorkeep`, killed after timeout seconds), for a test about the
    process itself: its signals, or all that a fresh process prints (a warning too, which pytest would
    catch here)."""
    if process:
        return subprocess.run(
            [sys.executable, "-m", "vectorkeep", *args],
            env={**os.environ, "VECTORKEEP_DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    from vectorkeep.cli import main

    out, err = io.StringIO(), io.StringIO()
    with in_process(url), redirect_stdout(out), redirect_stderr(err):
        try:
            returncode = main(list(args))
        except SystemExit as exc:  # argparse's errors (2), --help (0), SystemExit("message")
            returncode = exit_status(exc.code)
        except Exception:
            traceback.print_exc()  # as the interpreter prints it, then exits 1
            returncode = 1
    return subprocess.CompletedProcess(
        [sys.executable, "-m", "vectorkeep", *args], returncode, out.getvalue(), err.getvalue()
    )


def exit_status(code: object) -> int:
    """A process's exit status for SystemExit(code): None is 0; any other object than an int is
    printed to stderr, and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def in_process(url: str) -> Iterator[None]:
    """The CLI's main run here as in a process of its own, and nothing of it kept after: the
    environment (VECTORKEEP_DATABASE_URL=url; `worker --device` sets VECTORKEEP_DEVICE), the root
    logger without the tests' handlers (main's logging.basicConfig adds its own, to sys.stderr, only
    to a root logger that has none) and with its level, the levels main sets on the loggers it quiets
    (httpx...), and the SIGINT/SIGTERM handlers (a worker's stop on them). pytest's handlers (caplog)
    come back."""
    from vectorkeep import cli as command_line

    configure = command_line.log_to_stderr
    quieted: dict[str, int] = {}

    def log_to_stderr(args: argparse.Namespace) -> None:
        """main's logging set-up, remembering what each logger's level was before it."""
        before = logger_levels()
        configure(args)
        for name, level in logger_levels().items():
            if level != before.get(name, logging.NOTSET):
                quieted.setdefault(name, before.get(name, logging.NOTSET))

    environ = dict(os.environ)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    signals = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for handler in handlers:
        root.removeHandler(handler)
    os.environ["VECTORKEEP_DATABASE_URL"] = url
    try:
        with mock.patch.object(command_line, "log_to_stderr", log_to_stderr):
            yield
    finally:
        for signum, on_signal in signals.items():
            if on_signal is not None and signal.getsignal(signum) is not on_signal:
                signal.signal(signum, on_signal)
        for name, saved in quieted.items():
            logging.getLogger(name).setLevel(saved)
        for added in root.handlers[:]:
            root.removeHandler(added)
            added.close()
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for key in os.environ.keys() - environ.keys():
            del os.environ[key]
        for key, value in environ.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


def logger_levels() -> dict[str, int]:
    """The level of every logger made so far, by name (the root's aside)."""
    return {name: log.level for name, log in logging.root.manager.loggerDict.items() if isinstance(log, logging.Logger)}


def embeddings(conn: psycopg.Connection, collection: str = "documents") -> dict[str, dict[str, Any]]:
    """The vectors of a collection by row key, with model label and text hash (on Citus, once what the
    nodes captured is applied, as a worker does before claiming)."""
    collect(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """
            SELECT e.pk, e.body, e.embedding, e.text_sha256, e.computed_at, m.name || '@' || m.version AS model
            FROM vk.embeddings e
            JOIN vk.collections c ON c.id = e.collection_id
            JOIN vk.models m ON m.id = e.model_id
            WHERE c.name = %s
            """,
            (collection,),
        ).fetchall()
    return {r["pk"]: r for r in rows}


def on_citus(conn: psycopg.Connection) -> bool:
    """Whether vk is distributed over Citus here (the Citus lane: .ci/lane-citus)."""
    return bool(one(conn, "SELECT vk.distributed_v1()"))


def app_table(conn: psycopg.Connection, table: str, key: str) -> None:
    """What an application does on Citus before vk.attach: distribute its table by its key, so that every
    node knows it (vk.attach refuses a table of the coordinator only). Nothing on one server."""
    if on_citus(conn):
        conn.execute("SELECT create_distributed_table(%s, %s)", (table, key))


def collect(conn: psycopg.Connection) -> None:
    """On Citus, move what the nodes' triggers captured to the queue, as a worker does before it idles
    (nothing on one server; a schema older than revision 0017 has no such function)."""
    if one(conn, "SELECT to_regprocedure('vk.collect_captured_v1()') IS NOT NULL"):
        conn.execute("SELECT vk.collect_captured_v1()")


def queue_size(conn: psycopg.Connection) -> int:
    collect(conn)
    row = conn.execute("SELECT count(*) FROM vk.queue").fetchone()
    assert row is not None
    return int(row[0])


# By ids, then one (collection, model) at a time: Citus passes no whole row of its tables to a function.
INVARIANT_PAIRS = """
SELECT c.id, c.name, m.id, m.name || '@' || m.version
FROM vk.collections c
JOIN vk.collection_models cm ON cm.collection_id = c.id
JOIN vk.models m ON m.id = cm.model_id
"""
INVARIANT = """
SELECT cov.texts, cov.current, cov.queued,
       (SELECT count(DISTINCT e.pk) FROM vk.embeddings e
         WHERE e.collection_id = %(c)s AND e.model_id = %(m)s) AS vectors
FROM vk._coverage(vk.collection_v1(%(c)s), vk.model_v1(%(m)s)) cov
"""

# Rows whose chunks are not 0..n-1 all cut from one text.
TORN_ROWS = """
SELECT count(*) FROM (
    SELECT 1 FROM vk.embeddings e GROUP BY e.collection_id, e.pk, e.model_id
    HAVING count(*) <> max(e.chunk) + 1 OR count(DISTINCT e.text_sha256) > 1) torn
"""


def assert_invariant(conn: psycopg.Connection) -> None:
    """Every row with text has exactly one set of vectors (its chunks, or one) per model version of its
    collection, made from its current text (sha256), no vector is left without its row, and nothing
    is queued or claimed."""
    for c_id, name, m_id, model in conn.execute(INVARIANT_PAIRS).fetchall():
        texts, current, queued, vectors = conn.execute(INVARIANT, {"c": c_id, "m": m_id}).fetchone()  # type: ignore[misc]
        assert (current, vectors, queued) == (texts, texts, 0), (
            f"{name}/{model}: {texts} rows with text, {current} current vectors, {vectors} vectors, {queued} queued"
        )
    assert one(conn, TORN_ROWS) == 0, "a row's chunks are not one complete set from one text"
    free = 0
    with conn.transaction():
        # One collection at a time: Citus locks rows of one shard group per statement.
        for (c_id,) in conn.execute("SELECT id FROM vk.collections").fetchall():
            free += len(
                conn.execute(
                    "SELECT 1 FROM vk.queue WHERE collection_id = %s FOR UPDATE SKIP LOCKED", (c_id,)
                ).fetchall()
            )
    assert free == queue_size(conn), "queue rows are still claimed"


def whole_text_chunk(key: dict[str, Any], vector: Any, body: str) -> dict[str, Any]:
    """upsert_chunk's parameters for an unchunked row: chunk 0, the whole text."""
    return {
        **key,
        "chunk": 0,
        "start_char": 0,
        "end_char": len(body),
        "embedding": vector,
        "body": body,
        "text_sha256": hashlib.sha256(body.encode()).digest(),
        "truncated": False,
    }


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll condition until it holds; fail naming what was awaited after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def one(conn: psycopg.Connection, sql: str, params: Any = None) -> Any:
    """The first column of the first row of a query."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def is_do_block(statement: str) -> bool:
    """A named query that is a DO block (past its comments): it runs, it cannot be prepared."""
    return re.sub(r"^--.*\n", "", statement, flags=re.MULTILINE).startswith("DO ")


def prepare(conn: psycopg.Connection, name: str, statement: str) -> None:
    """PREPARE a named statement (its %(name)s placeholders as positional parameters of unknown
    type): the server parses and plans it against the schema, or raises."""
    statement = statement.rstrip().rstrip(";")
    names: list[str] = []
    for match in re.finditer(r"%\((\w+)\)s", statement):
        if match.group(1) not in names:
            names.append(match.group(1))
    for i, param in enumerate(names, 1):
        statement = statement.replace(f"%({param})s", f"${i}")
    conn.execute(f"PREPARE {name} AS {statement}")


@contextmanager
def background_worker(url: str, encoders: EncoderCache, settings: WorkerSettings) -> Iterator[Worker]:
    """A worker serving in a thread of this process until the block ends."""
    worker = Worker(url, settings, encoders=encoders)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
        assert not thread.is_alive()


@contextmanager
def running_lane(url: str, encoders: EncoderCache) -> Iterator[TextQueryLane]:
    """A worker's text-query lane (text queries) serving in a thread of this process until the block ends."""
    stop = threading.Event()
    lane = TextQueryLane(url, stop, encoders=encoders)
    thread = threading.Thread(target=lane.run, daemon=True)
    thread.start()
    try:
        assert lane.ready.wait(60), "the text-query lane did not start"
        yield lane
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()
