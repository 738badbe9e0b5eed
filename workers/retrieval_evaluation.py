"""Retrieval figures of a model version, on rows held out of its training.

recall@k: each held-out row is queried by the first half of its words; the
row must come back among the k nearest of a candidate pool (the held-out rows
plus a sample of training rows), encoded by the model being evaluated.
distance_spread: the 90th minus the 10th percentile of the pairwise cosine
distances among up to 200 of those rows (as vk.activate measures it on the
stored vectors): near 0 for a collapsed space, whatever its recall says.
agreement@10: how many of a held-out row's 10 nearest neighbours in the pool
are the same under this model and under a reference model (the collection's
current search model), from the reference's stored vectors.
"""

from typing import Any

import numpy as np

from vectorkeep.workers.arrays import l2_normalize
from vectorkeep.workers.encoders import Encoder


def _first_half(text: str) -> str:
    words = text.split()
    return " ".join(words[: max(1, len(words) // 2)])


def _topk(queries: np.ndarray, docs: np.ndarray, k: int) -> np.ndarray:
    sims = l2_normalize(queries) @ l2_normalize(docs).T
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def distance_spread(vectors: np.ndarray, limit: int = 200) -> dict[str, float]:
    unit = l2_normalize(np.asarray(vectors[:limit], dtype=np.float64))
    distances = (1 - unit @ unit.T)[np.triu_indices(len(unit), k=1)]
    if len(distances) == 0:
        return {}
    p10, p90 = np.percentile(distances, [10, 90])
    return {"distance_spread": round(float(p90 - p10), 4), "mean_distance": round(float(distances.mean()), 4)}


def retrieval_metrics(
    encoder: Encoder,
    heldout: list[tuple[str, str]],
    pool: list[tuple[str, str]],
    reference: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    heldout = [(pk, text) for pk, text in heldout if len(text.split()) >= 4]
    if not heldout:
        return {"heldout_rows": 0}
    seen = {pk for pk, _ in heldout}
    candidates = heldout + [(pk, t) for pk, t in pool if pk not in seen]
    docs = encoder.encode([t for _, t in candidates])
    queries = encoder.encode([_first_half(t) for _, t in heldout])
    ranks = _topk(queries, docs, 10)
    metrics: dict[str, Any] = {
        "heldout_rows": len(heldout),
        "pool_rows": len(candidates),
        "recall@1": float(np.mean(ranks[:, 0] == np.arange(len(heldout)))),
        "recall@10": float(np.mean([i in row for i, row in enumerate(ranks)])),
        **distance_spread(docs),
    }
    if reference and all(pk in reference for pk, _ in candidates):
        ref = np.stack([reference[pk] for pk, _ in candidates])
        mine = _topk(docs[: len(heldout)], docs, 11)[:, 1:]
        theirs = _topk(ref[: len(heldout)], ref, 11)[:, 1:]
        overlap = [len(set(a) & set(b)) / 10 for a, b in zip(mine, theirs, strict=True)]
        metrics["agreement@10"] = float(np.mean(overlap))
    return metrics
