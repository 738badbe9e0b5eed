"""One batch of the embedding queue: claim, encode, write, delete — one transaction.

The queue rows stay locked (FOR UPDATE SKIP LOCKED) from the claim to the
commit that writes their vectors and deletes them. A worker that dies
mid-batch loses its connection, its transaction rolls back, and the rows are
free for the next worker: at-least-once processing, and the upsert makes the
effect exactly once. An application that rewrites a row's text meanwhile waits
on that queue row's lock for the batch to commit, then queues it again, so a
vector of old text is never left as the row's current one.
"""

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg.rows import class_row

from vectorkeep.db import registry
from vectorkeep.db.records import Claimed, ModelVersion
from vectorkeep.sql import query
from vectorkeep.workers.chunking import Chunk, Chunking, chunks, encoder_spans
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.encoders.base import truncation_flags
from vectorkeep.workers.maps import coordinates
from vectorkeep.workers.maps.coordinates import MapCache

log = logging.getLogger(__name__)

# Maps loaded once per process; keyed by version and artifact hash, so a
# process serving several databases never mixes them.
_maps = MapCache()


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_seconds: float = 2.0


@dataclass
class BatchResult:
    claimed: int = 0
    embedded: int = 0
    emptied: int = 0
    failed: int = 0


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
    so that one bad row fails by itself and the others still get vectors.
    """
    try:
        vectors = encoder.encode(texts)
        results: list[np.ndarray | str] = list(vectors)
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


def process_batch(
    conn: psycopg.Connection,
    encoders: EncoderCache,
    *,
    batch_size: int = 64,
    retry: RetryPolicy = RetryPolicy(),
) -> BatchResult:
    """Claim up to batch_size queue rows and settle each of them; returns the counts."""
    result = BatchResult()
    with conn.transaction():
        with conn.cursor(row_factory=class_row(Claimed)) as cur:
            rows = cur.execute(query("claim"), {"batch_size": batch_size}).fetchall()
        result.claimed = len(rows)
        by_model: dict[int, list[Claimed]] = defaultdict(list)
        for row in rows:
            by_model[row.model_id].append(row)
        for model_id, items in by_model.items():
            _settle(conn, encoders, registry.by_id(conn, model_id), items, retry, result)
    return result


def _settle(
    conn: psycopg.Connection,
    encoders: EncoderCache,
    model: ModelVersion,
    items: list[Claimed],
    retry: RetryPolicy,
    result: BatchResult,
) -> None:
    empty = [r for r in items if not _has_text(r.body)]
    todo = [r for r in items if _has_text(r.body)]
    keys = ("collection_id", "pk", "model_id")

    def key(r: Claimed) -> dict[str, object]:
        return {k: getattr(r, k) for k in keys}

    with conn.cursor() as cur:
        if empty:
            # Nothing to embed: the row keeps no vector (vk.status counts it as empty).
            cur.executemany(query("finish_row"), [{**key(r), "chunks": 0} for r in empty])
            result.emptied += len(empty)
        if not todo:
            return
        try:
            encoder = encoders.get(conn, model)
            outcomes = embed_rows(conn, encoder, model.dim, todo)
        except Exception as exc:
            log.error("cannot encode with %s: %s", model.label, exc)
            outcomes = [f"{type(exc).__name__}: {exc}"] * len(todo)
        done = [(r, v) for r, v in zip(todo, outcomes, strict=True) if not isinstance(v, str)]
        failed = [(r, v) for r, v in zip(todo, outcomes, strict=True) if isinstance(v, str)]
        if done:
            cur.executemany(
                query("upsert_chunk"),
                [
                    {**key(r), **_chunk_params(c), "text_sha256": sha, "embedding": v, "truncated": t}
                    for r, (sha, pieces) in done
                    for c, v, t in pieces
                ],
            )
            # Chunks past the new last one belong to an older, longer text: same transaction.
            cur.executemany(query("finish_row"), [{**key(r), "chunks": len(p)} for r, (_, p) in done])
            result.embedded += len(done)
            # Rows move on the maps drawn from these vectors, in the same transaction.
            for collection_id in {r.collection_id for r, _ in done}:
                coordinates.follow(
                    conn,
                    _maps,
                    collection_id,
                    model,
                    [
                        (r.pk, np.mean([v for _, v, _ in pieces], axis=0), sha)
                        for r, (sha, pieces) in done
                        if r.collection_id == collection_id
                    ],
                )
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
                        **key(r),
                        "error": error,
                        "max_attempts": retry.max_attempts,
                        "backoff": retry.backoff_seconds,
                    }
                    for r, error in failed
                ],
            )
            result.failed += len(failed)
