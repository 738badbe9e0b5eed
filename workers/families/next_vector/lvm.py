"""Next-vector models: from the N previous vectors of a group (the chunks of a document,
in order) predict the next one.

Three architectures (LSTM, GRU, a small Transformer encoder) share one head:
the prediction is the context's mean plus a learned correction, normalised.
A network that has learned nothing predicts "mean of context" — one of the
two baselines it is gated against — so training starts from a sensible
answer and the gate asks whether it learned anything beyond it.

Splits are by group (a stable hash of the group key): validation groups for
early choices and the gate, test groups reported separately as the
out-of-distribution figure, never seen in training.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from vectorkeep.db import kinds
from vectorkeep.workers.arrays import l2_normalize, pack, unpack
from vectorkeep.workers.encoders.text import stable_hash
from vectorkeep.workers.progress import Report

log = logging.getLogger(__name__)

ARCHITECTURES = {"lvm-lstm": "lstm", "lvm-gru": "gru", "lvm-transformer": "transformer"}


class NextVector(nn.Module):
    def __init__(self, arch: str, dim: int, hidden: int, layers: int, heads: int, context: int) -> None:
        super().__init__()
        self.arch = arch
        self.inp = nn.Linear(dim, hidden)
        if arch == "lstm":
            self.body: nn.Module = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        elif arch == "gru":
            self.body = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True)
        elif arch == "transformer":
            self.position = nn.Parameter(torch.zeros(1, context, hidden))
            layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=hidden * 2, batch_first=True, dropout=0.0)
            self.body = nn.TransformerEncoder(layer, num_layers=layers)
        else:
            raise ValueError(f"unknown architecture {arch!r}")
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)  # starts as "mean of context"
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        if self.arch == "transformer":
            h = self.body(h + self.position[:, : h.shape[1]])
        else:
            h, _ = self.body(h)
        return nn.functional.normalize(x.mean(dim=1) + self.out(h[:, -1]), dim=1)


@dataclass
class Windows:
    """Training windows: (n, context, dim) contexts, (n, dim) targets, and each one's group."""

    contexts: np.ndarray
    targets: np.ndarray
    groups: list[str]

    @classmethod
    def from_rows(cls, rows: list[tuple[str, list[np.ndarray], np.ndarray]], context: int, dim: int) -> "Windows":
        """From (group, context vectors oldest first, next vector) rows, as vk.sequence_windows_v1 gives them."""
        if not rows:
            return cls(np.zeros((0, context, dim), np.float32), np.zeros((0, dim), np.float32), [])
        return cls(np.stack([np.stack(c) for _, c, _ in rows]), np.stack([t for *_, t in rows]), [g for g, *_ in rows])

    def subset(self, mask: np.ndarray) -> "Windows":
        return Windows(
            self.contexts[mask], self.targets[mask], [g for g, m in zip(self.groups, mask, strict=True) if m]
        )


def split(groups: list[str], validation: float, test: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks of train / validation / test windows, whole groups at a time."""
    u = np.array([stable_hash(g) % 10_000 / 10_000 for g in groups])
    is_test = u < test
    is_val = (u >= test) & (u < test + validation)
    return ~(is_test | is_val), is_val, is_test


def _cosines(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.sum(l2_normalize(pred) * l2_normalize(target), axis=1)


def scores(model: NextVector, w: Windows) -> dict[str, float | None]:
    """Mean cosine of the model and of both baselines on some windows."""
    if len(w.targets) == 0:
        return {"cosine": None, "last_cosine": None, "mean_cosine": None, "windows": 0}
    with torch.no_grad():
        pred = model(torch.from_numpy(w.contexts)).numpy()
    return {
        "cosine": round(float(_cosines(pred, w.targets).mean()), 4),
        "last_cosine": round(float(_cosines(w.contexts[:, -1], w.targets).mean()), 4),
        "mean_cosine": round(float(_cosines(w.contexts.mean(axis=1), w.targets).mean()), 4),
        "windows": len(w.targets),
    }


def train(
    windows: Windows, kind: str, params: dict[str, Any], report: Report | None = None
) -> tuple[NextVector, dict[str, Any]]:
    p = kinds.kind(kind).with_defaults(params)
    torch.manual_seed(int(p["seed"]))
    rng = np.random.default_rng(int(p["seed"]))
    arch = ARCHITECTURES[kind]
    train_mask, val_mask, test_mask = split(windows.groups, float(p["validation"]), float(p["test"]))
    fit, val, test = windows.subset(train_mask), windows.subset(val_mask), windows.subset(test_mask)
    if len(fit.targets) < 10 or len(val.targets) == 0:
        raise ValueError(
            f"too few sequences to train: {len(fit.targets)} training and {len(val.targets)} validation windows "
            f"of context {p['context']} (more groups, or a smaller context)"
        )
    dim = windows.targets.shape[1]
    model = NextVector(arch, dim, int(p["hidden"]), int(p["layers"]), int(p["heads"]), int(p["context"]))
    optimiser = torch.optim.Adam(model.parameters(), lr=float(p["lr"]))
    x, y = torch.from_numpy(fit.contexts), torch.from_numpy(l2_normalize(fit.targets))
    history = []
    batch = int(p["batch_size"])
    for epoch in range(int(p["epochs"])):
        model.train()
        order = rng.permutation(len(x))
        total = 0.0
        for i in range(0, len(x), batch):
            pick = order[i : i + batch]
            optimiser.zero_grad()
            loss = (1 - nn.functional.cosine_similarity(model(x[pick]), y[pick], dim=1)).mean()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(pick)
        model.eval()
        if report is not None:
            report("training", epoch + 1, int(p["epochs"]), "epochs")
        history.append(
            {"epoch": epoch + 1, "train_loss": round(total / len(x), 5), "val_cosine": scores(model, val)["cosine"]}
        )
        log.info("%s epoch %d: %s", kind, epoch + 1, history[-1])
    v, t = scores(model, val), scores(model, test)
    timings = []
    for row in val.contexts[:50]:
        start = time.perf_counter()
        with torch.no_grad():
            model(torch.from_numpy(row[None]))
        timings.append(time.perf_counter() - start)
    best_baseline = max(v["last_cosine"] or 0.0, v["mean_cosine"] or 0.0)
    metrics = {
        "val_cosine": v["cosine"],
        "val_baseline_last_cosine": v["last_cosine"],
        "val_baseline_mean_cosine": v["mean_cosine"],
        # > 0 when the model beats both baselines on held-out groups: the built-in gate.
        "val_margin_over_baseline": round((v["cosine"] or 0.0) - best_baseline, 4),
        "test_ood_cosine": t["cosine"],
        "test_ood_baseline_last_cosine": t["last_cosine"],
        "test_ood_baseline_mean_cosine": t["mean_cosine"],
        "windows": {"train": len(fit.targets), "validation": v["windows"], "test_ood": t["windows"]},
        "latency_ms": round(float(np.median(timings)) * 1000, 3),
        "history": history,
    }
    return model, metrics


def artifact(model: NextVector) -> bytes:
    return pack({k: v.detach().numpy() for k, v in model.state_dict().items()})


def load(kind: str, params: dict[str, Any], data: bytes) -> NextVector:
    p = kinds.kind(kind).with_defaults(params)
    model = NextVector(
        ARCHITECTURES[kind], int(p["dim"]), int(p["hidden"]), int(p["layers"]), int(p["heads"]), int(p["context"])
    )
    model.load_state_dict({k: torch.from_numpy(v) for k, v in unpack(data).items()})
    model.eval()
    return model


def predict(model: NextVector, context: np.ndarray) -> np.ndarray:
    """The next vector after a (context, dim) array of the group's last vectors, oldest first."""
    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(context, dtype=np.float32)[None]))[0].numpy()
