"""Ingest: worker throughput against the raw encoder, and the queue's own cost.

1. rows embedded per second by one worker draining a backlog / rows per
   second of encoder.encode() on the same texts and batch size, in the same
   process (raw measured before and after the worker; their mean is used);
2. the same drain with a no-op encoder (a deterministic random unit vector
   per text): what the trigger, queue, claim, upsert and HNSW insert cost;
   again with BM25's statistics triggers off (what keeping them costs the
   write), again without the HNSW index (the queue's own cost), and, as the raw
   part, the same vectors inserted by plain SQL into a table with the same
   HNSW index (steady state: the no-op worker / that, goal >= 0.9);
3. overlap on and off: worker / raw rows per second with an encoder that
   sleeps SLEEP_PER_64 seconds per 64 texts (an accelerator's encode, which
   leaves the CPU to the database), into a table without its HNSW index: with
   overlap the write of one batch hides behind the encode of the next.
"""

import hashlib
import time
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from bench.database import drop_index
from vectorkeep.db import registry
from vectorkeep.db.connect import connect
from vectorkeep.workers import kinds
from vectorkeep.workers.corpus import paragraphs
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.worker import Worker, WorkerSettings

# The no-op encoder's kind, beside the registry's (vectorkeep.db.kinds) for this run.
NOOP_KIND = (
    "INSERT INTO vk.model_kinds (kind, role, trainable, loadable, description) "
    "VALUES ('noop', 'encoder', false, true, 'bench: a unit vector from the text''s hash') ON CONFLICT DO NOTHING"
)


class NoopEncoder:
    """No model: a unit vector derived from the text's hash."""

    def __init__(self, params: dict[str, Any], artifact: bytes | None = None) -> None:
        self._dim = int(params.get("dim", 384))

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self._dim)
            out[i] = v / np.linalg.norm(v)
        return out


# An accelerator's encode, emulated: seconds per 64 texts, the CPU left idle.
SLEEP_PER_64 = 0.02


class SleepEncoder(NoopEncoder):
    """The no-op encoder's vectors after SLEEP_PER_64 seconds per 64 texts."""

    def encode(self, texts: list[str]) -> np.ndarray:
        time.sleep(SLEEP_PER_64 * len(texts) / 64)
        return super().encode(texts)


KEYWORD_TRIGGERS = (
    "ALTER TABLE vk.embeddings {switch} TRIGGER embeddings_keywords_inserted, "
    "{switch} TRIGGER embeddings_keywords_updated, {switch} TRIGGER embeddings_keywords_deleted"
)


def texts(n: int) -> list[str]:
    """n distinct real texts (the sample corpus, cycled with a suffix)."""
    base = [t for _, t in paragraphs()]
    return [base[i % len(base)] + ("" if i < len(base) else f" ({i // len(base)})") for i in range(n)]


def _insert(conn: psycopg.Connection, schema: str, table: str, rows: list[str]) -> None:
    statement = sql.SQL("COPY {} (body) FROM STDIN").format(sql.Identifier(schema, table))
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for body in rows:
            copy.write_row((body,))


def _drain(url: str, encoders: EncoderCache, batch_size: int, *, overlap: bool = True) -> tuple[int, float]:
    worker = Worker(url, WorkerSettings(batch_size=batch_size, overlap=overlap), encoders=encoders)
    start = time.perf_counter()
    stats = worker.run(until_idle=True)
    return stats.embedded, time.perf_counter() - start


def raw_rate(encoder: Any, rows: list[str], batch_size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(rows), batch_size):
        encoder.encode(rows[i : i + batch_size])
    return len(rows) / (time.perf_counter() - start)


def run(url: str, *, rows: int, batch_size: int = 64) -> dict[str, Any]:
    corpus = texts(rows)
    encoders = EncoderCache()
    with connect(url, autocommit=True) as conn:
        minilm = registry.by_spec(conn, "minilm@1")
        encoder = encoders.get(conn, minilm)  # loaded before timing
        raw_before = raw_rate(encoder, corpus, batch_size)
        _insert(conn, "vk", "documents", corpus)
    embedded, seconds = _drain(url, encoders, batch_size)
    raw_after = raw_rate(encoder, corpus, batch_size)
    raw = (raw_before + raw_after) / 2
    worker_rate = embedded / seconds

    kinds.EXTRA_LOADERS["noop"] = NoopEncoder
    with connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_noop (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)")
        conn.execute(NOOP_KIND)
        conn.execute("INSERT INTO vk.models (name, version, kind, dim) VALUES ('noop', 1, 'noop', 384)")
        conn.execute("SELECT vk.attach('bench_noop', 'id', 'body', 'noop@1')")
        _insert(conn, "public", "bench_noop", corpus)
    noop_embedded, noop_seconds = _drain(url, encoders, batch_size)

    # What BM25's statistics cost the write (revision 0020): the same drain with their triggers off.
    with connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_nobm25 (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)")
        conn.execute("SELECT vk.attach('bench_nobm25', 'id', 'body', 'noop@1')")
        _insert(conn, "public", "bench_nobm25", corpus)
        conn.execute(KEYWORD_TRIGGERS.format(switch="DISABLE"))
    try:
        nobm25_embedded, nobm25_seconds = _drain(url, encoders, batch_size)
    finally:
        with connect(url, autocommit=True) as conn:
            conn.execute(KEYWORD_TRIGGERS.format(switch="ENABLE"))

    # The queue's own cost: the same drain into a collection without its HNSW index.
    with connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_noindex (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)")
        conn.execute("SELECT vk.attach('bench_noindex', 'id', 'body', 'noop@1')")
        drop_index(conn, "bench_noindex", "noop@1")
        _insert(conn, "public", "bench_noindex", corpus)
    bare_embedded, bare_seconds = _drain(url, encoders, batch_size)
    hnsw_raw = _hnsw_insert_rate(url, NoopEncoder({}).encode(corpus), batch_size)
    same_table = _same_table_insert_rate(url, corpus, batch_size)
    overlap = _overlap(url, encoders, corpus, batch_size)

    return {
        "rows": rows,
        "batch_size": batch_size,
        "raw_encode_rows_per_s": round(raw, 1),
        "raw_encode_rows_per_s_before_after": [round(raw_before, 1), round(raw_after, 1)],
        "worker_rows_per_s": round(worker_rate, 1),
        "worker_over_raw": round(worker_rate / raw, 3),
        "worker_embedded": embedded,
        "noop_worker_rows_per_s": round(noop_embedded / noop_seconds, 1),
        "noop_embedded": noop_embedded,
        "noop_worker_rows_per_s_without_bm25": round(nobm25_embedded / nobm25_seconds, 1),
        "noop_worker_bm25_over_without": round(noop_embedded / noop_seconds / (nobm25_embedded / nobm25_seconds), 3),
        "noop_worker_rows_per_s_without_index": round(bare_embedded / bare_seconds, 1),
        "hnsw_insert_rows_per_s": round(hnsw_raw, 1),
        "noop_worker_over_hnsw_insert": round(noop_embedded / noop_seconds / hnsw_raw, 3),
        "same_table_insert_rows_per_s": round(same_table, 1),
        "noop_worker_over_same_table_insert": round(noop_embedded / noop_seconds / same_table, 3),
        **overlap,
    }


def _overlap(url: str, encoders: EncoderCache, corpus: list[str], batch_size: int) -> dict[str, Any]:
    """Worker / raw rows per second with the sleeping encoder, overlap off then on (same rows, same table
    kind, no HNSW index), and a no-op drain with the index with overlap off (what overlap adds there)."""
    kinds.EXTRA_LOADERS["sleep"] = SleepEncoder
    raw = raw_rate(SleepEncoder({}), corpus, batch_size)
    rates: dict[str, float] = {}
    for i, on in enumerate((False, True)):
        table = f"bench_sleep_{i}"
        with connect(url, autocommit=True) as conn:
            conn.execute(NOOP_KIND.replace("'noop'", "'sleep'", 1))
            conn.execute(
                "INSERT INTO vk.models (name, version, kind, dim) VALUES ('sleep', 1, 'sleep', 384) "
                "ON CONFLICT DO NOTHING"
            )
            conn.execute(
                sql.SQL("CREATE TABLE {} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)").format(
                    sql.Identifier(table)
                )
            )
            conn.execute("SELECT vk.attach(%s, 'id', 'body', 'sleep@1')", (table,))
            drop_index(conn, table, "sleep@1")
            _insert(conn, "public", table, corpus)
        embedded, seconds = _drain(url, encoders, batch_size, overlap=on)
        rates["on" if on else "off"] = embedded / seconds
    with connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_noop_serial (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)")
        conn.execute("SELECT vk.attach('bench_noop_serial', 'id', 'body', 'noop@1')")
        _insert(conn, "public", "bench_noop_serial", corpus)
    serial_embedded, serial_seconds = _drain(url, encoders, batch_size, overlap=False)
    return {
        "sleep_encode_rows_per_s": round(raw, 1),
        "sleep_worker_rows_per_s_overlap_off_on": [round(rates["off"], 1), round(rates["on"], 1)],
        "sleep_worker_over_raw_overlap_off": round(rates["off"] / raw, 3),
        "sleep_worker_over_raw_overlap_on": round(rates["on"] / raw, 3),
        "noop_worker_rows_per_s_overlap_off": round(serial_embedded / serial_seconds, 1),
    }


def _hnsw_insert_rate(url: str, vectors: np.ndarray, batch_size: int) -> float:
    """Rows/s of inserting these vectors by plain SQL, batch by batch, into an HNSW-indexed table."""
    with connect(url) as conn:
        register_vector(conn)
        conn.execute("CREATE TABLE bench_hnsw (id bigint PRIMARY KEY, embedding vector(384))")
        conn.execute("CREATE INDEX ON bench_hnsw USING hnsw (embedding vector_cosine_ops)")
        conn.commit()
        start = time.perf_counter()
        for i in range(0, len(vectors), batch_size):
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO bench_hnsw (id, embedding) VALUES (%s, %s)",
                    [(i + j, v) for j, v in enumerate(vectors[i : i + batch_size])],
                )
            conn.commit()
        return len(vectors) / (time.perf_counter() - start)


def _same_table_insert_rate(url: str, corpus: list[str], batch_size: int) -> float:
    """Rows/s of inserting the no-op vectors of these texts, with their text and hash, by plain SQL,
    batch by batch, into vk.embeddings for a fresh (collection, noop@1): the same table, HNSW, keyword
    and metadata indexes the worker writes through, without the queue, the claim or vectorkeep's functions."""
    vectors = NoopEncoder({}).encode(corpus)
    with connect(url) as conn:
        register_vector(conn)
        conn.execute("CREATE TABLE bench_same (id bigint PRIMARY KEY, body text)")
        conn.execute("SELECT vk.attach('bench_same', 'id', 'body', 'noop@1')")
        c_id = conn.execute("SELECT vk.collection_id('bench_same')").fetchone()[0]  # type: ignore[index]
        m_id = conn.execute("SELECT (vk.model('noop@1')).id").fetchone()[0]  # type: ignore[index]
        conn.commit()
        start = time.perf_counter()
        for i in range(0, len(vectors), batch_size):
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO vk.embeddings (collection_id, pk, model_id, chunk, start_char, end_char, "
                    "embedding, body, text_sha256) "
                    "VALUES (%s, %s, %s, 0, 0, %s, %s, %s, sha256(convert_to(%s, 'UTF8')))",
                    [
                        (c_id, str(i + j), m_id, len(t), v, t, t)
                        for j, (t, v) in enumerate(
                            zip(corpus[i : i + batch_size], vectors[i : i + batch_size], strict=True)
                        )
                    ],
                )
            conn.commit()
        return len(vectors) / (time.perf_counter() - start)
