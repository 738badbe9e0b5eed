"""`vectorkeep up`: from nothing to a searchable corpus (migrate, load a sample, embed it, search it).

Migrations (alembic) and the worker (numpy, the encoders) are imported when `up` runs, not with this module."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from vectorkeep.app import search, status
from vectorkeep.app.database import psql_command, redact
from vectorkeep.db.connect import connect
from vectorkeep.sql import query

if TYPE_CHECKING:
    from vectorkeep.workers.embed import BatchResult
    from vectorkeep.workers.encoder_cache import EncoderCache
    from vectorkeep.workers.worker import WorkerSettings

log = logging.getLogger(__name__)

SAMPLE_QUERY = "how do I catch an exception and clean up afterwards"

# Called with (rows done, rows pending at the start) before the first batch and after each one.
OnProgress = Callable[[int, int], None]


def _encoder_cache() -> EncoderCache:
    from vectorkeep.workers.encoder_cache import EncoderCache

    return EncoderCache()


@dataclass
class UpReport:
    """The database, what was embedded, and a sample search and similar-rows query over it."""

    database_url: str
    psql: str | None
    embedded: int
    sample_query: str
    search: list[dict[str, Any]]
    similar_to: str | None
    similar: list[dict[str, Any]]
    status: list[dict[str, Any]]
    # The encoders loaded on the way, for a worker that keeps serving after (not part of the report).
    encoders: EncoderCache = field(default_factory=_encoder_cache, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "database_url": self.database_url,
            "psql": self.psql,
            "embedded": self.embedded,
            "sample_query": self.sample_query,
            "search": self.search,
            "similar_to": self.similar_to,
            "similar": self.similar,
            "status": self.status,
        }


def load_sample_corpus(url: str) -> int:
    """Insert the sample paragraphs into vk.documents once; the number inserted."""
    from vectorkeep.workers import corpus

    with connect(url) as conn:
        loaded = conn.execute(query("corpus_loaded"), {"source": corpus.SOURCE}).fetchone()
        if loaded and loaded[0]:
            return 0
        rows = [
            {
                "body": text,
                "metadata": Jsonb({"source": corpus.SOURCE, "topic": topic, "licence": corpus.LICENCE}),
            }
            for topic, text in corpus.paragraphs()
        ]
        with conn.cursor() as cur:
            cur.executemany(query("insert_document"), rows)
        conn.commit()
    return len(rows)


def _pending(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute(query("pending")).fetchone()
    return int(row[0]) if row else 0


def up(
    url: str,
    settings: WorkerSettings | None = None,
    *,
    load_corpus: bool = True,
    on_progress: OnProgress | None = None,
) -> UpReport:
    """Migrate to head, load the sample corpus (once), embed every queued row, then search the sample."""
    from vectorkeep.db import migrate
    from vectorkeep.workers.worker import Worker

    migrate.upgrade(url)
    inserted = load_sample_corpus(url) if load_corpus else 0
    log.info("database ready at revision %s; %d sample paragraphs inserted", migrate.current_revision(url), inserted)

    worker = Worker(url, settings)
    total, done = _pending(url), 0

    def on_batch(batch: BatchResult) -> None:
        nonlocal done
        done += batch.embedded + batch.emptied + batch.failed
        if on_progress is not None:
            on_progress(done, total)

    if on_progress is not None:
        on_progress(done, total)
    worker.on_batch = on_batch
    worker.run(until_idle=True)

    hits = search.search(url, "documents", SAMPLE_QUERY, k=3, encoders=worker.encoders)
    similar_to = str(hits[0]["pk"]) if hits else None
    return UpReport(
        database_url=redact(url),
        psql=psql_command(url),
        embedded=worker.stats.embedded,
        sample_query=SAMPLE_QUERY,
        search=hits,
        similar_to=similar_to,
        similar=search.similar(url, "documents", similar_to, k=3) if similar_to is not None else [],
        status=status.status(url),
        encoders=worker.encoders,
    )
