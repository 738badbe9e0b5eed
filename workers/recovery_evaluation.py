"""Scoring recovery on held-out rows, method by method, against the nearest-other-text baseline.

Each held-out row's text is kept out of the reference: its own row and any
stored row with the same text are left out of the nearest texts, so every
method works as if the text had never been stored. Per method: exact
match, token F1, BLEU, mean cosine of the recovered text (re-embedded) to
the target, and seconds per vector; "best" is what the recovery entry point
answers (the better of the inverter and the nearest text, vector by vector).
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from vectorkeep.workers import recovery_scores
from vectorkeep.workers.progress import Report
from vectorkeep.workers.recovery import NEAREST, Recovered, Recovery

BEST = "best"


def _score(texts: list[str], references: list[str], cosines: list[float], seconds: list[float]) -> dict[str, Any]:
    return {
        **recovery_scores.summary(texts, references, cosines),
        "seconds_per_vector": round(float(np.mean(seconds)), 3),
    }


def evaluate_recovery(
    recovery: Recovery,
    pairs: Sequence[tuple[str, str, np.ndarray]],
    *,
    collection: str | None,
    report: Report,
) -> dict[str, Any]:
    """{method: scores} over the (pk, text, vector) pairs; the inverter's entry is named by its kind."""
    results: list[Recovered] = []
    for i, (pk, text, vector) in enumerate(pairs):
        report("recovering held-out rows", i, len(pairs))
        results.append(recovery.recover(vector, collection=collection, exclude_pk=pk, exclude_text=text))
    report("recovering held-out rows", len(pairs), len(pairs))
    references = [text for _, text, _ in pairs]
    scores: dict[str, Any] = {}
    methods = [a.method for a in results[0].tried] if results else []
    for method in methods:
        attempts = [next(a for a in r.tried if a.method == method) for r in results]
        scores[method] = {
            **_score(
                [a.text for a in attempts], references, [a.cosine for a in attempts], [a.seconds for a in attempts]
            ),
            "model": attempts[0].model,
        }
    if len(methods) > 1:
        scores[BEST] = {
            **_score(
                [r.best.text for r in results],
                references,
                [r.best.cosine for r in results],
                [sum(a.seconds for a in r.tried) for r in results],
            ),
            "inverter_chosen": float(np.mean([r.best.method != NEAREST for r in results])),
        }
    return scores
