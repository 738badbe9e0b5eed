"""TF-IDF with an optional projection to a dense space, fitted in streaming passes.

Pass 1 counts document frequencies (memory: the distinct terms, not the rows).
Pass 2 fits the projection on batches of TF-IDF rows: `svd` accumulates the
max_features x max_features Gram matrix and keeps its top eigenvectors (an
uncentred SVD); `pca` uses scikit-learn's IncrementalPCA; `none` keeps the raw
TF-IDF (max_features must then be at most 2000, HNSW's limit). Neither pass
holds more than one batch of rows.
"""

import logging
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from vectorkeep.workers.arrays import pack
from vectorkeep.workers.encoders.text import tokenize
from vectorkeep.workers.families.tfidf.encoder import TfidfFeatures
from vectorkeep.workers.progress import Report
from vectorkeep.workers.training import Trained, TrainingRun, batched

log = logging.getLogger(__name__)


def fit_features(
    texts: Iterable[tuple[str, str]], max_features: int, min_df: int, report: Report | None = None
) -> tuple[TfidfFeatures, int]:
    df: Counter[str] = Counter()
    n = 0
    for _, body in texts:
        df.update(set(tokenize(body)))
        n += 1
        if report is not None and n % 1000 == 0:
            report("counting terms", n)
    if n == 0:
        raise ValueError("the collection has no text to train on")
    kept = sorted((t for t, c in df.items() if c >= min_df), key=lambda t: (-df[t], t))[:max_features]
    if not kept:
        raise ValueError(f"no term occurs in {min_df} or more rows; lower min_df")
    vocabulary = sorted(kept)
    idf = np.array([math.log((1 + n) / (1 + df[t])) + 1 for t in vocabulary], dtype=np.float32)
    log.info("tfidf: %d rows, %d distinct terms, %d kept", n, len(df), len(vocabulary))
    return TfidfFeatures(vocabulary, idf), n


def train(run: TrainingRun) -> Trained:
    p, texts = run.params, run.texts()
    features, rows = fit_features(texts, int(p["max_features"]), int(p["min_df"]), run.report)
    arrays = features.arrays()
    n_features = len(features.vocabulary)
    reduce, batch_size = str(p["reduce"]), int(p["batch_size"])
    metrics: dict[str, Any] = {"rows": rows, "vocabulary": n_features}
    if reduce == "none":
        if n_features > 2000:
            raise ValueError(f"reduce=none keeps {n_features} dimensions; HNSW indexes at most 2000")
        dim = n_features
    elif reduce == "svd":
        dim = min(int(p["dim"]), n_features, rows)
        gram = np.zeros((n_features, n_features), dtype=np.float64)
        for i, batch in enumerate(batched((body for _, body in texts), batch_size)):
            run.report("fitting the projection", i * batch_size + len(batch), rows)
            x = features.transform(batch)
            gram += x.T @ x
        eigenvalues, eigenvectors = np.linalg.eigh(gram)
        order = np.argsort(eigenvalues)[::-1][:dim]
        arrays["components"] = eigenvectors[:, order].astype(np.float32)
        metrics["explained_variance"] = float(eigenvalues[order].sum() / max(eigenvalues.sum(), 1e-12))
    elif reduce == "pca":
        from sklearn.decomposition import IncrementalPCA

        dim = min(int(p["dim"]), n_features, rows)
        pca = IncrementalPCA(n_components=dim)
        for i, batch in enumerate(batched((body for _, body in texts), max(batch_size, dim))):
            run.report("fitting the projection", i * max(batch_size, dim) + len(batch), rows)
            if len(batch) >= dim:  # IncrementalPCA needs at least n_components rows a batch
                pca.partial_fit(features.transform(batch))
        arrays["components"] = pca.components_.T.astype(np.float32)
        arrays["mean"] = pca.mean_.astype(np.float32)
        metrics["explained_variance"] = float(pca.explained_variance_ratio_.sum())
    else:
        raise ValueError(f"reduce must be none, svd or pca, not {reduce!r}")
    return Trained(artifact=pack(arrays), dim=dim, params={**p, "dim": dim}, metrics=metrics)
