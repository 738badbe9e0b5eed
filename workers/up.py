"""`vectorkeep up`: from nothing to a searchable corpus, then a running worker."""

import logging
import signal
import sys

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from tqdm import tqdm

from vectorkeep.db import embedded, migrate, settings
from vectorkeep.db.connect import connect
from vectorkeep.sql import query
from vectorkeep.workers import corpus
from vectorkeep.workers.embed import BatchResult
from vectorkeep.workers.output import emit
from vectorkeep.workers.search import search_text, similar
from vectorkeep.workers.service import Service
from vectorkeep.workers.worker import Worker, WorkerSettings

log = logging.getLogger(__name__)

SAMPLE_QUERY = "how do I catch an exception and clean up afterwards"


def load_sample_corpus(url: str) -> int:
    """Insert the sample paragraphs into vk.documents once; the number inserted."""
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


def up(url: str, worker_settings: WorkerSettings, *, exit_when_done: bool, load_corpus: bool, as_json: bool) -> int:
    migrate.upgrade(url)
    inserted = load_sample_corpus(url) if load_corpus else 0
    log.info(
        "database ready at revision %s; %d sample paragraphs inserted",
        migrate.current_revision(url),
        inserted,
    )

    worker = Worker(url, worker_settings)
    bar = tqdm(total=_pending(url), desc="embedding", unit="row", file=sys.stderr, disable=as_json or None)

    def on_batch(batch: BatchResult) -> None:
        bar.update(batch.embedded + batch.emptied + batch.failed)

    worker.on_batch = on_batch
    worker.run(until_idle=True)
    bar.close()

    report = _sample(url, worker)
    if as_json:
        emit([report], as_json=True)
    else:
        _print_report(report)
    if exit_when_done:
        return 0

    print("\nworker running (queue and jobs); Ctrl-C to stop (the database keeps running: `vectorkeep down`)")
    service = Service(url, worker_settings, encoders=worker.encoders)

    def handler(signum: int, _frame: object) -> None:
        service.stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    service.run()
    return 0


def _sample(url: str, worker: Worker) -> dict:
    with connect(url) as conn:
        hits = search_text(conn, "documents", SAMPLE_QUERY, k=3, encoders=worker.encoders)
        neighbours = similar(conn, "documents", hits[0]["pk"], k=3) if hits else []
        with conn.cursor(row_factory=dict_row) as cur:
            status = cur.execute(query("status")).fetchall()
    psql = None
    if not settings.configured_url():
        psql = f'{embedded.psql_path()} "{url}"'
    return {
        "database_url": url,
        "psql": psql,
        "embedded": worker.stats.embedded,
        "sample_query": SAMPLE_QUERY,
        "search": hits,
        "similar_to": hits[0]["pk"] if hits else None,
        "similar": neighbours,
        "status": status,
    }


def _print_report(report: dict) -> None:
    print(f"\nembedded {report['embedded']} rows in this run\n")
    emit(report["status"], as_json=False)
    print(f"\nSELECT * FROM vk.search('documents', <vector of {report['sample_query']!r}>, 3);")
    emit(report["search"], as_json=False)
    if report["similar_to"] is not None:
        print(f"\nSELECT * FROM vk.similar('documents', '{report['similar_to']}', 3);")
        emit(report["similar"], as_json=False)
    print(f"\ndatabase: {report['database_url']}")
    if report["psql"]:
        print(f"psql:     {report['psql']}")
