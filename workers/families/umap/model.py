"""Parametric UMAP: a torch MLP from embedding space to 2D, trained with UMAP's loss
over the fuzzy neighbour graph, and a decoder MLP from 2D back to embedding space.

The graph is UMAP's (McInnes et al. 2018): each point's k nearest neighbours
(cosine, exact, scikit-learn) with weights exp(-(d - rho_i) / sigma_i), sigma_i
set so the weights sum to log2(k), then symmetrised (a + b - a*b). The encoder
learns low-dimensional positions where 1 / (1 + a*d^(2b)) matches those
weights (cross-entropy over the graph's edges and negative samples), as in
Sainburg et al. 2021's Parametric UMAP, without TensorFlow. The decoder is
trained afterwards to map the encoder's 2D positions back to the (normalised)
embeddings, by cosine.
"""

import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import sparse
from scipy.optimize import curve_fit
from sklearn.manifold import trustworthiness
from sklearn.neighbors import NearestNeighbors
from torch import nn

from vectorkeep.db import kinds
from vectorkeep.workers.arrays import l2_normalize, pack, unpack
from vectorkeep.workers.progress import Report

log = logging.getLogger(__name__)


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no activation after the last layer


def find_ab(min_dist: float, spread: float = 1.0) -> tuple[float, float]:
    """UMAP's curve 1 / (1 + a x^(2b)) fitted to 1 below min_dist and exp(-(x - min_dist)) above."""
    x = np.linspace(0, spread * 3, 300)
    y = np.where(x < min_dist, 1.0, np.exp(-(x - min_dist) / spread))
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), x, y)
    return float(a), float(b)


def fuzzy_graph(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges (heads, tails) and weights of UMAP's symmetrised fuzzy k-neighbour graph."""
    k = min(k, len(x) - 1)
    distances, neighbours = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(x).kneighbors(x)
    distances, neighbours = distances[:, 1:], neighbours[:, 1:]  # without the point itself
    rho = distances[:, 0]
    target = np.log2(k)
    sigma = np.ones(len(x))
    for i in range(len(x)):  # binary search per point, as in umap-learn's smooth_knn_dist
        lo, hi, mid = 0.0, np.inf, 1.0
        d = np.maximum(distances[i] - rho[i], 0)
        for _ in range(64):
            total = np.exp(-d / mid).sum()
            if abs(total - target) < 1e-5:
                break
            if total > target:
                hi = mid
                mid = (lo + hi) / 2
            else:
                lo = mid
                mid = mid * 2 if hi == np.inf else (lo + hi) / 2
        sigma[i] = max(mid, 1e-3 * np.mean(distances))
    weights = np.exp(-np.maximum(distances - rho[:, None], 0) / sigma[:, None])
    n = len(x)
    # Sparse throughout: n * k edges, never an n x n matrix.
    w = sparse.coo_matrix((weights.ravel(), (np.repeat(np.arange(n), k), neighbours.ravel())), shape=(n, n)).tocsr()
    fuzzy = (w + w.T - w.multiply(w.T)).tocoo()
    return fuzzy.row, fuzzy.col, fuzzy.data.astype(np.float32)


@dataclass
class MapModel:
    """The trained map: embedding -> 2D (encoder) and 2D -> embedding (decoder)."""

    encoder: nn.Sequential
    decoder: nn.Sequential
    params: dict[str, Any]

    def to_2d(self, vectors: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.from_numpy(l2_normalize(np.asarray(vectors, dtype=np.float32)))
            return self.encoder(x).numpy().astype(np.float64)

    def from_2d(self, points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self.decoder(torch.from_numpy(np.asarray(points, dtype=np.float32))).numpy()
        return l2_normalize(out)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            **{f"encoder.{k}": v.numpy() for k, v in self.encoder.state_dict().items()},
            **{f"decoder.{k}": v.numpy() for k, v in self.decoder.state_dict().items()},
        }

    @classmethod
    def load(cls, params: dict[str, Any], artifact: bytes) -> "MapModel":
        arrays = unpack(artifact)
        dim, hidden = int(params["source_dim"]), [int(h) for h in params["hidden"]]
        encoder, decoder = mlp([dim, *hidden, 2]), mlp([2, *reversed(hidden), dim])
        for net, prefix in ((encoder, "encoder."), (decoder, "decoder.")):
            state = {k[len(prefix) :]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith(prefix)}
            net.load_state_dict(state)
            net.eval()
        return cls(encoder, decoder, params)


def _umap_loss(
    encoder: nn.Module, x: torch.Tensor, heads: np.ndarray, tails: np.ndarray, a: float, b: float, negatives: int
) -> torch.Tensor:
    """Cross-entropy of UMAP: pull edges together, push random pairs apart."""
    rng = np.random.default_rng()
    neg_heads = np.repeat(heads, negatives)
    neg_tails = rng.integers(0, len(x), len(neg_heads))
    # Encode only the rows this batch touches: a step costs O(batch), not O(rows).
    rows, inverse = np.unique(np.concatenate([heads, tails, neg_heads, neg_tails]), return_inverse=True)
    z = encoder(x[torch.from_numpy(rows)])
    h, t, nh, nt = np.split(inverse, np.cumsum([len(heads), len(tails), len(neg_heads)]))

    def q(i: np.ndarray, j: np.ndarray) -> torch.Tensor:
        d2 = ((z[i] - z[j]) ** 2).sum(dim=1)
        return 1.0 / (1.0 + a * d2.clamp_min(1e-12) ** b)

    eps = 1e-4
    attract = -torch.log(q(h, t).clamp(eps, 1.0)).mean()
    repel = -torch.log((1 - q(nh, nt)).clamp(eps, 1.0)).mean()
    return attract + negatives * repel


def train(vectors: np.ndarray, params: dict[str, Any], report: Report | None = None) -> tuple[MapModel, dict[str, Any]]:
    """Train the map on an (n, dim) array; hold out params.validation of it for the metrics."""
    p = kinds.kind("umap").with_defaults(params)
    seed = int(p["seed"])
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_all = l2_normalize(np.asarray(vectors, dtype=np.float32))
    n, dim = x_all.shape
    if n < 20:
        raise ValueError(f"a map needs at least 20 rows with vectors; the collection has {n}")
    order = rng.permutation(n)
    n_val = max(10, int(n * float(p["validation"])))
    val, fit = x_all[order[:n_val]], x_all[order[n_val:]]
    a, b = find_ab(float(p["min_dist"]))
    heads, tails, weights = fuzzy_graph(fit, int(p["n_neighbors"]))
    hidden = [int(h) for h in p["hidden"]]
    encoder, decoder = mlp([dim, *hidden, 2]), mlp([2, *reversed(hidden), dim])
    x = torch.from_numpy(fit)
    optimiser = torch.optim.Adam(encoder.parameters(), lr=float(p["lr"]))
    # Edges are sampled in proportion to their weight, as UMAP's SGD does.
    probabilities = weights / weights.sum()
    batch, history = int(p["batch_size"]), []
    steps = max(1, len(heads) // batch)
    for epoch in range(int(p["epochs"])):
        total = 0.0
        for _ in range(steps):
            pick = rng.choice(len(heads), size=batch, p=probabilities)
            optimiser.zero_grad()
            loss = _umap_loss(encoder, x, heads[pick], tails[pick], a, b, int(p["negative_samples"]))
            loss.backward()
            optimiser.step()
            total += loss.item()
        history.append(total / steps)
        if report is not None:
            report("training the map", epoch + 1, int(p["epochs"]), "epochs")
        log.info("umap epoch %d: loss %.4f", epoch + 1, history[-1])
    encoder.eval()

    # The decoder: 2D positions of the fitted rows back to their embeddings.
    with torch.no_grad():
        z = encoder(x)
    optimiser = torch.optim.Adam(decoder.parameters(), lr=float(p["lr"]))
    for epoch in range(int(p["decoder_epochs"])):
        if report is not None:
            report("training its inverse", epoch, int(p["decoder_epochs"]), "epochs")
        for i in range(0, len(x), batch):
            optimiser.zero_grad()
            out = decoder(z[i : i + batch])
            loss = (1 - nn.functional.cosine_similarity(out, x[i : i + batch], dim=1)).mean()
            loss.backward()
            optimiser.step()
    decoder.eval()

    model = MapModel(encoder, decoder, {**p, "hidden": hidden, "source_dim": dim, "a": a, "b": b})
    return model, evaluate(model, val, fit, history)


def evaluate(model: MapModel, val: np.ndarray, fit: np.ndarray, history: list[float]) -> dict[str, Any]:
    """Neighbour preservation and reconstruction on the held-out rows."""
    z_val = model.to_2d(val)
    k = min(10, len(val) // 2 - 1)
    decoded = model.from_2d(z_val)
    round_trip = model.to_2d(decoded)
    grid = model.to_2d(fit)
    spread = float(np.linalg.norm(grid.max(axis=0) - grid.min(axis=0))) or 1.0
    timings = []
    for row in val[:20]:
        start = time.perf_counter()
        model.to_2d(row[None, :])
        timings.append(time.perf_counter() - start)
    return {
        "rows": len(val) + len(fit),
        "validation_rows": len(val),
        "trustworthiness": round(float(trustworthiness(val, z_val, n_neighbors=k, metric="cosine")), 4),
        "reconstruction_cosine": round(float(np.mean(np.sum(decoded * val, axis=1))), 4),
        # 2D -> embedding -> 2D, as a fraction of the map's extent
        "round_trip_error": round(float(np.mean(np.linalg.norm(round_trip - z_val, axis=1))) / spread, 4),
        "final_loss": round(history[-1], 4) if history else None,
        "loss_history": [round(h, 4) for h in history],
        "latency_ms": round(float(np.median(timings)) * 1000, 3),
    }


def artifact(model: MapModel) -> bytes:
    return pack(model.arrays())
