"""Recovery: text back from bare vectors, on two corpora of different kinds, against the
nearest-other-text baseline; and map gaps filled with text.

Corpora (offline, PSF-2.0, nothing tuned on them):

- sentences: the sentences of 5 to 32 words of the sample corpus's paragraphs
  (vectorkeep.workers.corpus.sentences: Python's topic help);
- docstrings: first lines of 4 to 32 words of the standard library's public
  function and class docstrings (vectorkeep.workers.corpus.docstring_lines).

Each corpus goes into a table of its own, attached with MiniLM (the default)
and embedded by a worker. An edit-search inverter is trained as a job with
its defaults on the rows not held out (stable hash, 10 %); vk.evaluate_recovery
then recovers `rows` held-out rows from their vectors, their text kept out of
the reference, each within the time box (default 8 s on 2 cores), and scores
exact match, token F1, BLEU, cosine and seconds per vector for the nearest
other stored text (the baseline), edit search, and best (the better of the
two, vector by vector, as every recovery answers).

Gaps: a parametric UMAP map of the sentences; its first `gaps` gaps decoded to
vectors and recovered to text; how many texts land back in their grid cell,
and how many differ.

    python -m bench.recovery [--rows 20] [--seconds 8] [--gaps 10]
"""

import argparse
import json
import time
from collections.abc import Iterable
from typing import Any

from bench.database import bench_database
from vectorkeep.app import maps
from vectorkeep.db.connect import connect
from vectorkeep.workers.corpus import docstring_lines, sentences
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.service import Service
from vectorkeep.workers.worker import Worker, WorkerSettings

CORPORA = {"sentences": sentences, "docstrings": docstring_lines}
MAP = '{"epochs": 40, "decoder_epochs": 150}'


def _jobs(url: str, encoders: EncoderCache) -> None:
    Service(url, WorkerSettings(), encoders=encoders).run(until_idle=True)


def _load(url: str, table: str, texts: Iterable[str], encoders: EncoderCache) -> int:
    with connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, body text NOT NULL)")
        with conn.cursor() as cur, cur.copy(f"COPY {table} (id, body) FROM STDIN") as copy:
            for i, text in enumerate(texts):
                copy.write_row((i, text))
        conn.execute("SELECT vk.attach(%s, 'id', 'body')", (table,))
    return Worker(url, WorkerSettings(batch_size=64), encoders=encoders).run(until_idle=True).embedded


def _job(conn: Any, job_id: int) -> dict[str, Any]:
    status, error, metrics = conn.execute(
        "SELECT status, error, metrics FROM vk.jobs WHERE id = %s", (job_id,)
    ).fetchone()
    if status != "succeeded":
        raise RuntimeError(f"job {job_id} {status}: {error}")
    return metrics  # type: ignore[no-any-return]


def corpus(url: str, name: str, *, rows: int, seconds: float, encoders: EncoderCache) -> dict[str, Any]:
    embedded = _load(url, name, CORPORA[name](), encoders)
    with connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        train_id = conn.execute(
            "SELECT vk.train(%s, 'edit-search', '{\"encoder\": \"minilm@1\"}', %s)", (f"words_{name}", name)
        ).fetchone()[0]
        _jobs(url, encoders)
        trained = _job(conn, train_id)
        train_seconds = time.perf_counter() - started
        evaluate_id = conn.execute(
            "SELECT vk.evaluate_recovery(%s, 'minilm@1', %s, %s)",
            (name, f"words_{name}@1", json.dumps({"rows": rows, "max_seconds": seconds})),
        ).fetchone()[0]
        _jobs(url, encoders)
        scores = _job(conn, evaluate_id)
    nearest, edit, best = scores["nearest"], scores["edit-search"], scores["best"]
    return {
        "rows": embedded,
        "heldout_rows": nearest["n"],
        "seconds_per_vector_box": seconds,
        "train_seconds": round(train_seconds, 1),
        "vocabulary": trained["vocabulary"],
        **{f"nearest_{k}": _round(v) for k, v in nearest.items() if k not in ("n", "model")},
        **{f"edit_{k}": _round(v) for k, v in edit.items() if k not in ("n", "model")},
        **{f"best_{k}": _round(v) for k, v in best.items() if k not in ("n", "model")},
        "best_token_f1_over_nearest": round(best["token_f1"] / nearest["token_f1"], 3),
    }


def gaps(url: str, *, fill: int, encoders: EncoderCache) -> dict[str, Any]:
    """Gaps of a map of the sentences, filled (run after corpus(..., 'sentences'): its inverter is ready)."""
    with connect(url, autocommit=True) as conn:
        job_id = conn.execute("SELECT vk.train('map', 'umap', %s, 'sentences')", (MAP,)).fetchone()[0]
        _jobs(url, encoders)
        _job(conn, job_id)
    found = maps.find_gaps(url, "map@1", search=maps.GapSearch(cells=24), fill=fill)
    return {**found.summary(), "texts": [f["text"] for f in found.filled]}


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def run(url: str, *, rows: int = 20, seconds: float = 8.0, fill: int = 10) -> dict[str, Any]:
    """Figures keyed corpus_figure (sentences_best_token_f1_over_nearest, gaps_in_cell, ...)."""
    encoders = EncoderCache()
    parts = {name: corpus(url, name, rows=rows, seconds=seconds, encoders=encoders) for name in CORPORA}
    if fill:
        parts["gaps"] = gaps(url, fill=fill, encoders=encoders)
    return {f"{part}_{key}": value for part, figures in parts.items() for key, value in figures.items()}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__)
    parser.add_argument("--rows", type=int, default=20, help="held-out rows recovered per corpus")
    parser.add_argument("--seconds", type=float, default=8.0, help="time box a vector")
    parser.add_argument("--gaps", type=int, default=10, help="map gaps to fill (0: none)")
    args = parser.parse_args()
    with bench_database() as url:
        print(json.dumps(run(url, rows=args.rows, seconds=args.seconds, fill=args.gaps), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
