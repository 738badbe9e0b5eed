"""The interactive lane: text queries (vk.embed, vk.search with a text) answered
while the embedding queue, however long, waits its turn.

It runs beside the queue in a thread of its own, with its own connections and
its own copies of the encoders (one encoder is never called from two threads),
so a bulk batch never delays a query. A query waits in vk.embed_requests; the
lane encodes it and writes the vector to vk.embed_cache, where the caller's
session, polling on its loopback connection, picks it up
(sql/definitions/35_text_queries.sql). The lane's listening session is how
callers know a worker is there: its application_name starts with
"vectorkeep interactive".
"""

import logging
import os
import socket
import threading
import time
from collections import defaultdict

import psycopg

from vectorkeep.db import registry
from vectorkeep.db.connect import connect
from vectorkeep.db.records import ModelVersion
from vectorkeep.sql import query
from vectorkeep.workers.embed import encode_rows
from vectorkeep.workers.encoder_cache import EncoderCache

log = logging.getLogger(__name__)

APPLICATION_NAME = "vectorkeep interactive"
# A waiting caller polls every millisecond; the lane needs no poll of its own
# beyond a missed notification's.
POLL_SECONDS = 1.0
PRUNE_EVERY_SECONDS = 60.0
# A version's row is read again after this long (a round trip saved on each
# query; a status or fingerprint change is seen within it).
MODEL_TTL_SECONDS = 10.0


class InteractiveLane:
    def __init__(
        self,
        url: str,
        stop_event: threading.Event,
        *,
        encoders: EncoderCache | None = None,
        batch_size: int = 32,
    ) -> None:
        self.url = url
        self.stop_event = stop_event
        self.encoders = encoders or EncoderCache()
        self.batch_size = batch_size
        self.name = f"{socket.gethostname()}-{os.getpid()}"
        self.answered = 0
        self.ready = threading.Event()  # set once listening with its encoders loaded
        self._models: dict[int, tuple[float, ModelVersion]] = {}

    def run(self) -> None:
        """Serve text queries until the stop event; reconnect after a lost connection, waiting
        0.5 s, then twice as long after each failure in a row (at most 10 s)."""
        delay = 0.5
        while not self.stop_event.is_set():
            try:
                self._serve()
                return
            except psycopg.OperationalError as exc:
                log.warning("interactive lane: database connection lost (%s); reconnecting in %.1fs", exc, delay)
            except Exception:
                log.exception("interactive lane: failed; restarting in %.1fs", delay)
            if self.ready.is_set():
                delay = 0.5  # it had served: a fresh failure, not one more in a row
                self.ready.clear()
            self.stop_event.wait(delay)
            delay = min(delay * 2, 10.0)

    def _serve(self) -> None:
        with (
            connect(self.url, autocommit=True, application_name=f"{APPLICATION_NAME} {self.name}") as listener,
            connect(self.url, application_name=f"vectorkeep lane {self.name}") as conn,
        ):
            row = conn.execute(query("has_interactive_lane")).fetchone()
            conn.rollback()
            if not (row and row[0]):
                log.warning("the schema serves no text queries (before revision 0011): interactive lane off")
                return
            self._preload(conn)
            listener.execute(query("listen_embed"))
            self.ready.set()
            log.info("interactive lane %s listening for text queries", self.name)
            pruned = 0.0
            while not self.stop_event.is_set():
                if self._answer(conn):
                    continue
                if time.monotonic() - pruned > PRUNE_EVERY_SECONDS:
                    conn.execute(query("prune_embed_cache"))
                    conn.commit()
                    pruned = time.monotonic()
                self._wait(listener)

    def _preload(self, conn: psycopg.Connection) -> None:
        """Load the encoders collections are searched with, so that a first query waits for none."""
        ids = [r[0] for r in conn.execute(query("search_models")).fetchall()]
        conn.rollback()
        for model_id in ids:
            try:
                self.encoders.get(conn, registry.by_id(conn, model_id))
                conn.commit()
            except psycopg.OperationalError:
                raise
            except Exception as exc:
                conn.rollback()
                log.warning("interactive lane: cannot load model %s: %s", model_id, exc)

    def _answer(self, conn: psycopg.Connection) -> int:
        """Answer one batch of waiting text queries; returns how many."""
        with conn.transaction():
            requests = conn.execute(query("claim_embed_requests"), {"batch_size": self.batch_size}).fetchall()
            by_model: dict[int, list[tuple[int, str]]] = defaultdict(list)
            for request_id, model_id, text in requests:
                by_model[model_id].append((request_id, text))
            for model_id, items in by_model.items():
                try:
                    model = self._model(conn, model_id)
                    # A version no collection searches with yet: loaded here, once.
                    encoder = self.encoders.get(conn, model)
                    results = encode_rows(encoder, [text for _, text in items], model.dim)
                except Exception as exc:
                    log.error("interactive lane: cannot encode with model %s: %s", model_id, exc)
                    results = [f"{type(exc).__name__}: {exc}"] * len(items)
                for (request_id, _), result in zip(items, results, strict=True):
                    if isinstance(result, str):
                        conn.execute(query("fail_embed_request"), {"id": request_id, "error": result})
                    else:
                        conn.execute(query("answer_embed_request"), {"id": request_id, "embedding": result})
        self.answered += len(requests)
        return len(requests)

    def _model(self, conn: psycopg.Connection, model_id: int) -> ModelVersion:
        cached = self._models.get(model_id)
        if cached is None or time.monotonic() - cached[0] > MODEL_TTL_SECONDS:
            cached = (time.monotonic(), registry.by_id(conn, model_id))
            self._models[model_id] = cached
        return cached[1]

    def _wait(self, listener: psycopg.Connection) -> None:
        deadline = time.monotonic() + POLL_SECONDS
        while not self.stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for _ in listener.notifies(timeout=min(left, 0.25), stop_after=1):
                return
