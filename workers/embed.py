"""One batch of the embedding queue: claim, encode, write, delete — one transaction.

The queue rows stay locked (FOR UPDATE SKIP LOCKED) from the claim to the
commit that writes their vectors and deletes them. A worker that dies
mid-batch loses its connection, its transaction rolls back, and the rows are
free for the next worker: at-least-once processing, and the upsert makes the
effect exactly once. An application that rewrites a row's text meanwhile waits
on that queue row's lock for the batch to commit, then queues it again, so a
vector of old text is never left as the row's current one. That wait is one
batch's encoding, never an encoder's load (seconds to minutes the first
time): encoders are loaded before the claim, with no transaction open.

A batch has two halves: claim_batch (claim and encode, on the caller's
thread: encoders are not thread-safe) and Batch.commit (send the writes and
commit, touching no encoder), so that the worker can write one batch while it
encodes the next (workers.overlap); process_batch runs them one after the other.
"""

import contextlib
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import psycopg
from psycopg.rows import class_row

from vectorkeep.db import registry
from vectorkeep.db.records import Claimed, ModelVersion
from vectorkeep.sql import query
from vectorkeep.workers import metrics
from vectorkeep.workers.chunking import Chunk, Chunking, chunks, encoder_spans
from vectorkeep.workers.counts import RowCounts
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.encoders.base import ProviderBusy, truncation_flags
from vectorkeep.workers.encoders.usage import Usage, take_usage

log = logging.getLogger(__name__)

# Steps that follow a batch's new vectors in its transaction: (connection, collection id, model version,
# [(pk, the row's vector (the mean of its chunks'), text sha256)]). The batch knows no feature that
# registers one (map-following: workers/map_coordinates.py, registered by the loops that run batches),
# and imports none of them (an import-linter contract in pyproject.toml).
AfterWrite = Callable[[psycopg.Connection, int, ModelVersion, list[tuple[str, np.ndarray, bytes]]], None]
_after_write: list[AfterWrite] = []


def after_write(step: AfterWrite) -> None:
    """Run `step` after each batch writes vectors, in the batch's transaction (once, however often registered)."""
    if step not in _after_write:
        _after_write.append(step)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_seconds: float = 2.0


@dataclass
class BatchResult(RowCounts):
    claimed: int = 0


def _has_text(body: str | None) -> bool:
    return body is not None and body.strip() != ""


def _check_vector(vector: np.ndarray, dim: int) -> str | None:
    """Why a vector cannot be stored, or None when it can."""
    if vector.shape != (dim,):
        return f"encoder returned shape {vector.shape}, expected ({dim},)"
    if not np.all(np.isfinite(vector)):
        return "encoder returned NaN or infinite values"
    return None


def encode_rows(encoder: Encoder, texts: list[str], dim: int) -> list[np.ndarray | str]:
    """A vector, or the error message, for each text.

    The batch is encoded at once; if that raises, each text is encoded alone
    so that one bad row fails by itself and the others still get vectors. An
    encoder behind an API finds the texts its provider refuses itself
    (encode_each); a provider that cannot embed now raises ProviderBusy, for
    the whole batch: that is no text's fault.
    """
    each = getattr(encoder, "encode_each", None)
    if each is not None:
        found: list[np.ndarray | str] = each(texts)
        return [r if isinstance(r, str) else (_check_vector(r, dim) or r) for r in found]
    try:
        vectors = encoder.encode(texts)
        results: list[np.ndarray | str] = list(vectors)
    except ProviderBusy:
        raise
    except Exception as exc:
        if len(texts) == 1:
            return [f"{type(exc).__name__}: {exc}"]
        log.warning("batch of %d failed to encode (%s); encoding rows one by one", len(texts), exc)
        results = [encode_rows(encoder, [text], dim)[0] for text in texts]
    return [r if isinstance(r, str) else (_check_vector(r, dim) or r) for r in results]


# A row's chunks with their vectors and truncation flags, and the hash of the row's text.
Embedded = tuple[bytes, list[tuple[Chunk, np.ndarray, bool]]]


def _chunk_params(c: Chunk) -> dict[str, object]:
    return {"chunk": c.index, "start_char": c.start, "end_char": c.end, "body": c.text}


def embed_rows(conn: psycopg.Connection, encoder: Encoder, dim: int, rows: list[Claimed]) -> list[Embedded | str]:
    """Each row cut by its collection's chunking and embedded, or the reason it could not be.

    All chunks of the batch are encoded together, batch by batch; a row
    fails as a whole when any of its chunks does, so that it never ends up
    with part of its chunks from one text and part from another.
    """
    spans, window = encoder_spans(encoder)
    settings: dict[int, Chunking] = {}
    cut: list[list[Chunk] | str] = []
    for r in rows:
        if r.collection_id not in settings:
            value = conn.execute(query("collection_chunking"), {"collection_id": r.collection_id}).fetchone()
            settings[r.collection_id] = Chunking.from_json(value[0] if value else None)
        try:
            found = list(chunks(r.body or "", settings[r.collection_id], spans, window))
            cut.append(found or f"chunking {settings[r.collection_id].method} left no text to embed")
        except ValueError as exc:
            cut.append(f"chunking: {exc}")
    flat = [c.text for pieces in cut if not isinstance(pieces, str) for c in pieces]
    vectors = encode_rows(encoder, flat, dim)
    flags = truncation_flags(encoder, flat)
    out: list[Embedded | str] = []
    at = 0
    for r, pieces in zip(rows, cut, strict=True):
        if isinstance(pieces, str):
            out.append(pieces)
            continue
        mine = list(zip(pieces, vectors[at : at + len(pieces)], flags[at : at + len(pieces)], strict=True))
        at += len(pieces)
        error = next((v for _, v, _ in mine if isinstance(v, str)), None)
        if error is not None:
            out.append(error if len(mine) == 1 else f"a chunk failed: {error}")
        else:
            sha = hashlib.sha256((r.body or "").encode()).digest()
            out.append((sha, [(c, v, t) for c, v, t in mine if not isinstance(v, str)]))
    return out


@dataclass
class Encoded:
    """A version's rows of a claimed batch, encoded: what the batch's transaction has left to write."""

    model: ModelVersion
    empty: list[Claimed]  # no text: settled with no vector
    done: list[tuple[Claimed, Embedded]]
    failed: list[tuple[Claimed, str]]  # each with its error
    # The encoder's provider was busy or unreachable: each row back in the queue after the seconds given.
    deferred: list[tuple[Claimed, str, float]] = field(default_factory=list)
    usage: Usage | None = None  # what an encoder behind an API used for these rows (vk.api_usage)


@dataclass
class Batch:
    """A claimed batch, encoded, in the open transaction of the connection that claimed it."""

    retry: RetryPolicy
    result: BatchResult
    parts: list[Encoded] = field(default_factory=list)
    record: metrics.BatchMetrics = field(default_factory=metrics.BatchMetrics)  # its worker's metrics
    # Rows the claim itself failed (their text or metadata expression raised), per version: settled
    # in the database already, counted in the metrics once the batch commits.
    claim_failed: dict[str, int] = field(default_factory=dict)

    def commit(self, conn: psycopg.Connection) -> BatchResult:
        """Write the vectors, settle the empty rows, fail the others, and commit (all or nothing:
        on an error the transaction rolls back and every row of the batch is queued again).

        Touches no encoder, so it may run in another thread than the claim's while that
        thread uses another connection (workers.overlap)."""
        try:
            for part in self.parts:
                _write(conn, part, self.retry, self.result)
            conn.commit()
        except BaseException:
            _rollback(conn)
            raise
        if any(p.done or p.empty for p in self.parts):
            _compact_keyword_stats(conn)
        rows = {p.model.label: (len(p.done), len(p.failed)) for p in self.parts}
        for label, failed in self.claim_failed.items():
            embedded, failed_here = rows.get(label, (0, 0))
            rows[label] = (embedded, failed_here + failed)
        self.record.committed(rows)
        for p in self.parts:
            if p.usage or p.deferred:
                self.record.api(p.model.label, p.usage.as_params() if p.usage else {}, len(p.deferred))
        return self.result


def _compact_keyword_stats(conn: psycopg.Connection) -> None:
    """Fold the BM25 counts the batch appended (a transaction of its own, after the batch's): searches
    sum what is not folded yet, so a failure here costs them speed, never a result."""
    try:
        if conn.execute(query("has_keyword_stats")).fetchone()[0]:  # type: ignore[index]
            conn.execute(query("compact_keyword_stats"))
        conn.commit()
    except psycopg.Error as exc:
        _rollback(conn)
        log.warning("could not fold the keyword statistics (searches stay exact, only slower): %s", exc)


def process_batch(
    conn: psycopg.Connection,
    encoders: EncoderCache,
    *,
    batch_size: int = 64,
    retry: RetryPolicy = RetryPolicy(),
    claim: str = "claim",
) -> BatchResult:
    """Claim up to batch_size queue rows and settle each of them, one transaction; returns the counts.

    claim_batch, then Batch.commit on the same connection (the worker's
    overlapped loop runs the two halves of consecutive batches side by side).
    """
    batch = claim_batch(conn, encoders, batch_size=batch_size, retry=retry, claim=claim)
    return batch.commit(conn)


def claim_batch(
    conn: psycopg.Connection,
    encoders: EncoderCache,
    *,
    batch_size: int = 64,
    retry: RetryPolicy = RetryPolicy(),
    claim: str = "claim",
) -> Batch:
    """Claim up to batch_size queue rows and encode them; their writes wait in the Batch returned,
    its transaction open on conn (a connection not in autocommit, idle) until Batch.commit.

    claim names the claiming query: "claim" (every ready row, the application's first) or
    "claim_live" (only the application's rows for searched versions: the text-query lane's).

    No encoder is loaded while queue rows are locked: an application that
    rewrites one of those rows would wait for the load. A claim that finds
    rows of a version whose encoder this process has not loaded yet is rolled
    back at once (the claim writes nothing), the encoders are loaded with no
    transaction open, and the batch is claimed again. A version whose encoder
    cannot load (no artifact, a failed sha256 or fingerprint check, an unknown
    kind) fails its rows with the reason, as a row that cannot be encoded does.
    On an error the claim is rolled back: its rows are free for the next batch.
    """
    if conn.autocommit or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("claim_batch needs an idle connection that is not in autocommit")
    loads: dict[int, str | ProviderBusy | None] = {}
    try:
        claimed = _claim_and_encode(conn, encoders, batch_size, retry, loads, claim, may_give_back=True)
        if isinstance(claimed, Batch):
            return claimed
        _load(conn, encoders, claimed, loads)
        again = _claim_and_encode(conn, encoders, batch_size, retry, loads, claim, may_give_back=False)
        assert isinstance(again, Batch)
        return again
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: psycopg.Connection) -> None:
    """Roll back the transaction in hand, if the connection still can; a broken connection
    is left as it is (the error on its way out says why, and the server rolled back)."""
    with contextlib.suppress(psycopg.OperationalError):
        if not conn.closed:
            conn.rollback()


def _claim_and_encode(
    conn: psycopg.Connection,
    encoders: EncoderCache,
    batch_size: int,
    retry: RetryPolicy,
    loads: dict[int, str | ProviderBusy | None],
    claim: str,
    *,
    may_give_back: bool,
) -> Batch | list[ModelVersion]:
    """Claim a batch and encode it, its transaction left open; or, with may_give_back,
    when the batch needs an encoder not loaded yet, roll the claim back and return
    the versions to load first.

    loads: the versions this batch tried to load, each with None (loaded) or
    why its encoder cannot load. Without may_give_back, rows of a version not
    loaded and not tried (claimed since the loads: a race) are left untouched
    in the queue: their locks go at the commit, and the next batch loads their
    encoder before claiming them.
    """
    # The rows the claim fails never reach Python: a worker with metrics reads how many (two short
    # statements in the claim's transaction, sql/queries.sql claim_failures).
    counting = metrics.recording_now()
    updates_before = _queue_updates(conn) if counting else 0
    with conn.cursor(row_factory=class_row(Claimed)) as cur:
        rows = cur.execute(query(claim), {"batch_size": batch_size}).fetchall()
    by_model: dict[int, list[Claimed]] = defaultdict(list)
    for row in rows:
        by_model[row.model_id].append(row)
    models = [registry.by_id(conn, model_id) for model_id in by_model]
    missing = [m for m in models if m.id not in loads and not encoders.loaded(m)]
    if missing and may_give_back:
        conn.rollback()
        return missing
    batch = Batch(retry, BatchResult(claimed=len(rows)))
    # A claim that returns a full batch failed none: it locks at most batch_size rows.
    if counting and len(rows) < batch_size:
        batch.claim_failed = _claim_failures(conn, rows, updates_before)
    for model in models:
        if any(m.id == model.id for m in missing):
            log.info(
                "%d rows of %s left for the next batch: its encoder is not loaded yet",
                len(by_model[model.id]),
                model.label,
            )
            continue
        batch.parts.append(_encode(conn, encoders, model, by_model[model.id], loads.get(model.id)))
    return batch


def _queue_updates(conn: psycopg.Connection) -> int:
    """The queue rows this session has updated so far, statistics not yet reported; read in the batch's
    transaction (its first statement), where the count only grows."""
    row = conn.execute(query("queue_updates")).fetchone()
    return int(row[0]) if row else 0


def _claim_failures(conn: psycopg.Connection, rows: list[Claimed], updates_before: int) -> dict[str, int]:
    """Per version (name@version), the rows the claim just failed, in its transaction (sql/queries.sql)."""
    params = {
        "collection_ids": [r.collection_id for r in rows],
        "pks": [r.pk for r in rows],
        "model_ids": [r.model_id for r in rows],
        "updates_before": updates_before,
    }
    return {str(label): int(n) for label, n in conn.execute(query("claim_failures"), params).fetchall()}


@contextlib.contextmanager
def _no_transaction(conn: psycopg.Connection) -> Iterator[None]:
    """Each statement commits by itself: nothing is locked, and no snapshot held, while an encoder loads."""
    if conn.autocommit or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        # Autocommit already, or inside the caller's own transaction, which keeps what it holds.
        yield
        return
    conn.autocommit = True
    try:
        yield
    finally:
        # A broken connection stays as it is: the error on its way out says why.
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.autocommit = False


def _load(
    conn: psycopg.Connection,
    encoders: EncoderCache,
    models: list[ModelVersion],
    loads: dict[int, str | ProviderBusy | None],
) -> None:
    """Load (and fingerprint-check) each version's encoder, outside any transaction;
    record in loads None for each one loaded, the reason for each one that cannot be."""
    with _no_transaction(conn):
        for model in models:
            try:
                encoders.get(conn, model)
                loads[model.id] = None
            except psycopg.OperationalError:
                raise  # the connection is gone: the worker reconnects
            except ProviderBusy as exc:
                log.warning("%s cannot encode now: %s", model.label, exc)
                loads[model.id] = exc
            except Exception as exc:
                log.error("cannot encode with %s: %s", model.label, exc)
                loads[model.id] = f"{type(exc).__name__}: {exc}"


def _key(r: Claimed) -> dict[str, object]:
    return {"collection_id": r.collection_id, "pk": r.pk, "model_id": r.model_id}


def _encode(
    conn: psycopg.Connection,
    encoders: EncoderCache,
    model: ModelVersion,
    items: list[Claimed],
    unusable: str | ProviderBusy | None,
) -> Encoded:
    """Encode a version's rows (all of them failed with its reason when the version's encoder
    could not load: unusable; deferred when its provider is busy); rows with no text have nothing
    to encode."""
    todo = [r for r in items if _has_text(r.body)]
    outcomes: list[Embedded | str] = []
    busy = unusable if isinstance(unusable, ProviderBusy) else None
    usage: Usage | None = None
    if isinstance(unusable, str):
        outcomes = [unusable] * len(todo)
    elif todo and busy is None:
        try:
            # Loaded before the claim: this only checks the recorded fingerprint again.
            encoder = encoders.get(conn, model)
            try:
                with metrics.encoding(model.label):
                    outcomes = embed_rows(conn, encoder, model.dim, todo)
            finally:
                usage = take_usage(encoder)
        except ProviderBusy as exc:
            busy = exc
        except Exception as exc:
            log.error("cannot encode with %s: %s", model.label, exc)
            outcomes = [f"{type(exc).__name__}: {exc}"] * len(todo)
    empty = [r for r in items if not _has_text(r.body)]
    if busy is not None:
        log.warning("%d rows of %s wait %.1fs: %s", len(todo), model.label, busy.retry_after, busy)
        reason = f"{type(busy).__name__}: {busy}"
        return Encoded(model, empty, [], [], [(r, reason, busy.retry_after) for r in todo], usage)
    return Encoded(
        model,
        empty=empty,
        done=[(r, v) for r, v in zip(todo, outcomes, strict=True) if not isinstance(v, str)],
        failed=[(r, v) for r, v in zip(todo, outcomes, strict=True) if isinstance(v, str)],
        usage=usage,
    )


def _write(conn: psycopg.Connection, part: Encoded, retry: RetryPolicy, result: BatchResult) -> None:
    """Send one version's writes of a batch (in the batch's transaction)."""
    model, done, failed = part.model, part.done, part.failed
    with conn.cursor() as cur:
        if part.deferred:
            cur.executemany(
                query("defer"), [{**_key(r), "reason": why, "seconds": wait} for r, why, wait in part.deferred]
            )
            result.deferred += len(part.deferred)
        if part.usage:
            cur.execute(query("record_api_usage"), {"model_id": model.id, "job_id": None, **part.usage.as_params()})
        if part.empty:
            # Nothing to embed: the row keeps no vector (vk.status counts it as empty).
            cur.executemany(query("finish_row"), [{**_key(r), "chunks": 0} for r in part.empty])
            result.emptied += len(part.empty)
        if done:
            cur.executemany(
                query("upsert_chunk"),
                [
                    {**_key(r), **_chunk_params(c), "text_sha256": sha, "embedding": v, "truncated": t}
                    for r, (sha, pieces) in done
                    for c, v, t in pieces
                ],
            )
            # Chunks past the new last one belong to an older, longer text: same transaction.
            cur.executemany(query("finish_row"), [{**_key(r), "chunks": len(p)} for r, (_, p) in done])
            result.embedded += len(done)
            # What follows the vectors (rows moving on their maps) changes with them, in the same transaction.
            for collection_id in {r.collection_id for r, _ in done} if _after_write else ():
                rows = [
                    (r.pk, np.mean([v for _, v, _ in pieces], axis=0), sha)
                    for r, (sha, pieces) in done
                    if r.collection_id == collection_id
                ]
                for step in _after_write:
                    step(conn, collection_id, model, rows)
        if failed:
            for r, error in failed:
                log.warning(
                    "row %s of collection %s failed with %s (attempt %d): %s",
                    r.pk,
                    r.collection_id,
                    model.label,
                    r.attempts + 1,
                    error,
                )
            cur.executemany(
                query("fail"),
                [
                    {
                        **_key(r),
                        "error": error,
                        "max_attempts": retry.max_attempts,
                        "backoff": retry.backoff_seconds,
                    }
                    for r, error in failed
                ],
            )
            result.failed += len(failed)
