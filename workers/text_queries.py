"""The text-query lane: text queries (vk.embed, vk.search with a text) answered
while the embedding queue, however long, waits its turn.

It runs beside the queue in a thread of its own, with its own connections and
its own copies of the encoders (one encoder is never called from two threads),
so a bulk batch never delays a query. A query waits in vk.embed_requests; the
lane claims a batch (in turn across login roles, within a text budget),
commits the claim while it holds each request's advisory lock, encodes,
writes each vector on its request (and into vk.embed_cache), commits, and
releases the locks: the callers, waiting on those locks, wake at once and read
their answers (sql/definitions/35_text_queries.sql). The lane's listening
session is how callers know a worker is there: its application_name starts
with "vectorkeep interactive", and its role must be a worker's.

With live_rows (a worker's lane), the lane also embeds the rows the
application writes (vk.claim_live_v1: single statements' rows, for the
versions their collection searches with), a small batch at a time after the
text queries, with the same encoders: while the main loop works through a
backfill or a bulk load, a new row is searchable within one small batch
instead of waiting for the main loop's batch in hand.
"""

import logging
import os
import socket
import threading
import time
from collections import defaultdict

import numpy as np
import psycopg

from vectorkeep.db import registry
from vectorkeep.db.connect import connect
from vectorkeep.db.records import ModelVersion
from vectorkeep.sql import query
from vectorkeep.workers.embed import RetryPolicy, after_write, encode_rows, process_batch
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders.usage import take_usage
from vectorkeep.workers.map_coordinates import follow_batch

log = logging.getLogger(__name__)

# The batches this loop runs move their rows on their maps (the batch itself knows no maps).
after_write(follow_batch)

# The name SQL looks for (vk._request_embedding, vk.status): part of the worker contract, so it keeps
# the lane's first name; every other place calls it the text-query lane.
APPLICATION_NAME = "vectorkeep interactive"
# Callers wait on the claim's locks; the lane polls only for a missed
# notification and to delete requests whose callers went away (each claim
# does), so that none outlives its caller by more than this.
POLL_SECONDS = 0.5
PRUNE_EVERY_SECONDS = 60.0
# Rows the application wrote, embedded between text queries: small, so that a
# text query waits at most one such batch.
LIVE_BATCH = 8
# A version's row is read again after this long (a round trip saved on each
# query; a status or fingerprint change is seen within it).
MODEL_TTL_SECONDS = 10.0


class TextQueryLane:
    def __init__(
        self,
        url: str,
        stop_event: threading.Event,
        *,
        encoders: EncoderCache | None = None,
        batch_size: int = 8,
        live_rows: bool = False,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url
        self.stop_event = stop_event
        # Patience 0: an API encoder whose budget is spent defers its rows here, never holds the others'.
        self.encoders = encoders or EncoderCache(patience=0.0)
        self.batch_size = batch_size
        self.live_rows = live_rows
        self.retry = retry or RetryPolicy()
        self.rows_embedded = 0
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
                log.warning("text-query lane: database connection lost (%s); reconnecting in %.1fs", exc, delay)
            except Exception:
                log.exception("text-query lane: failed; restarting in %.1fs", delay)
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
            row = conn.execute(query("has_text_query_lane")).fetchone()
            conn.rollback()
            if not (row and row[0]):
                log.warning("the schema serves no text queries (before revision 0011): text-query lane off")
                return
            self._preload(conn)
            listener.execute(query("listen_embed"))
            live = self.live_rows and bool(conn.execute(query("has_live_claim")).fetchone()[0])  # type: ignore[index]
            conn.rollback()
            if live:
                listener.execute(query("listen"))
            self.ready.set()
            log.info("text-query lane %s listening for text queries%s", self.name, " and new rows" if live else "")
            pruned = 0.0
            while not self.stop_event.is_set():
                if self._answer(conn):
                    continue
                if live and self._embed_live(conn):
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
                log.warning("text-query lane: cannot load model %s: %s", model_id, exc)

    def _answer(self, conn: psycopg.Connection) -> int:
        """Answer one batch of waiting text queries; returns how many."""
        with conn.transaction():
            requests = conn.execute(query("claim_embed_requests"), {"batch_size": self.batch_size}).fetchall()
        if not requests:
            return 0
        try:
            by_model: dict[int, list[tuple[int, str]]] = defaultdict(list)
            for request_id, model_id, text in requests:
                by_model[model_id].append((request_id, text))
            for model_id, items in by_model.items():
                with conn.transaction():
                    results = self._encode(conn, model_id, [text for _, text in items])
                with conn.transaction():
                    for (request_id, _), result in zip(items, results, strict=True):
                        if isinstance(result, str):
                            conn.execute(query("fail_embed_request"), {"id": request_id, "error": result})
                        else:
                            conn.execute(query("answer_embed_request"), {"id": request_id, "embedding": result})
            # Counted before the locks go: a caller that has its answer finds it counted.
            self.answered += len(requests)
        finally:
            # Callers wait on these locks; a lane that failed here releases them too (its
            # callers then find no answer and wait for the next claim).
            if not conn.closed:
                with conn.transaction():
                    conn.execute(query("release_embed_requests"))
        return len(requests)

    def _encode(self, conn: psycopg.Connection, model_id: int, texts: list[str]) -> list[np.ndarray | str]:
        """Each text's vector, or its error as a string (every text's, when the model cannot be loaded)."""
        try:
            model = self._model(conn, model_id)
            # A version no collection searches with yet: loaded here, once.
            encoder = self.encoders.get(conn, model)
            try:
                return encode_rows(encoder, texts, model.dim)
            finally:
                usage = take_usage(encoder)
                if usage:
                    conn.execute(query("record_api_usage"), {"model_id": model.id, "job_id": 0, **usage.as_params()})
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            log.error("text-query lane: cannot encode with model %s: %s", model_id, exc)
            return [f"{type(exc).__name__}: {exc}"] * len(texts)

    def _embed_live(self, conn: psycopg.Connection) -> int:
        """Embed one small batch of the rows the application wrote; returns how many were claimed."""
        result = process_batch(conn, self.encoders, batch_size=LIVE_BATCH, retry=self.retry, claim="claim_live")
        self.rows_embedded += result.embedded
        return result.claimed

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
