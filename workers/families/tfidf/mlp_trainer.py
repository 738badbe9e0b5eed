"""TF-IDF features -> torch MLP -> a normalised embedding, trained on the database's own
(text, vector) pairs to embed like a teacher model (by default the collection's search
model): a small, fast encoder distilled from a large one.

Loss: 1 - cosine(MLP(tfidf(text)), teacher vector). Held-out rows are the
validation split. Each epoch streams the pairs again; memory holds the
vocabulary, the network and one batch (plus a shuffle buffer).
"""

import logging
import random
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from vectorkeep.workers.arrays import pack
from vectorkeep.workers.families.tfidf import trainer as tfidf
from vectorkeep.workers.families.tfidf.mlp_encoder import build_mlp, mlp_arrays
from vectorkeep.workers.training import Pair, Trained, TrainingRun, batched

log = logging.getLogger(__name__)


def _shuffled(pairs: Iterable[Pair], buffer: int, rng: random.Random) -> Iterator[Pair]:
    pool: list[Pair] = []
    for item in pairs:
        pool.append(item)
        if len(pool) >= buffer:
            yield pool.pop(rng.randrange(len(pool)))
    rng.shuffle(pool)
    yield from pool


def _loss(mlp: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> torch.Tensor:
    out = mlp(torch.from_numpy(x))
    return (1 - torch.nn.functional.cosine_similarity(out, torch.from_numpy(y), dim=1)).mean()


def train(run: TrainingRun) -> Trained:
    teacher = run.require_reference("a teacher model's vectors")
    p, texts = run.params, run.texts()
    teacher_dim = teacher.dim
    torch.manual_seed(int(p["seed"]))
    rng = random.Random(int(p["seed"]))
    train_pairs = run.pairs(teacher, "train")
    val_pairs = run.pairs(teacher, "heldout")
    features, rows = tfidf.fit_features(texts, int(p["max_features"]), int(p["min_df"]), run.report)
    hidden = [int(h) for h in p["hidden"]]
    mlp = build_mlp(len(features.vocabulary), hidden, teacher_dim)
    optimiser = torch.optim.Adam(mlp.parameters(), lr=float(p["lr"]))
    history: list[dict[str, float | None]] = []
    batch_size = int(p["batch_size"])
    for epoch in range(int(p["epochs"])):
        mlp.train()
        total, n = 0.0, 0
        for batch in batched(_shuffled(train_pairs, int(p["shuffle_buffer"]), rng), batch_size):
            run.report("training", epoch, int(p["epochs"]), "epochs")
            x = features.transform([b[1] for b in batch])
            y = np.stack([b[2] for b in batch]).astype(np.float32)
            optimiser.zero_grad()
            loss = _loss(mlp, x, y)
            loss.backward()
            optimiser.step()
            total, n = total + loss.item() * len(batch), n + len(batch)
        if n == 0:
            raise ValueError("no (text, vector) pairs of the teacher model to learn from: embed the collection first")
        mlp.eval()
        val_total, val_n = 0.0, 0
        with torch.no_grad():
            for batch in batched(val_pairs, 256):
                x = features.transform([b[1] for b in batch])
                y = np.stack([b[2] for b in batch]).astype(np.float32)
                val_total, val_n = val_total + float(_loss(mlp, x, y)) * len(batch), val_n + len(batch)
        history.append({"epoch": epoch + 1, "train_loss": total / n, "val_loss": val_total / val_n if val_n else None})
        log.info("tfidf-mlp epoch %d: train loss %.4f, val loss %s", epoch + 1, total / n, history[-1]["val_loss"])
    arrays = {**features.arrays(), **mlp_arrays(mlp)}
    return Trained(
        artifact=pack(arrays),
        dim=teacher_dim,
        params={**p, "dim": teacher_dim, "hidden": hidden},
        metrics={
            "rows": rows,
            "vocabulary": len(features.vocabulary),
            "train_loss": history[-1]["train_loss"],
            "val_loss": history[-1]["val_loss"],
            "loss_history": history,
        },
    )
