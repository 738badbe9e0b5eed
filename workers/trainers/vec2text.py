"""A vec2text inverter for one encoder version, trained on the database's own
(text, vector) pairs of that version.

Memory: the inverter, and one batch of pairs (streamed each epoch).
"""

import logging
import random

import numpy as np
import torch

from vectorkeep.db import kinds
from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.inversion import model as inverter
from vectorkeep.workers.trainers.data import CollectionPairs, batched
from vectorkeep.workers.trainers.result import Trained
from vectorkeep.workers.trainers.run import TrainingRun

log = logging.getLogger(__name__)


def encoder_source(encoder: ModelVersion) -> str:
    invertible = kinds.kind("vec2text-inverter").param("encoder").kinds  # type: ignore[union-attr]
    if encoder.kind not in invertible or not encoder.params.get("source"):
        raise ValueError(
            f"a vec2text inverter needs a Hugging Face encoder ({', '.join(invertible)}); "
            f"{encoder.label} is {encoder.kind}"
        )
    return str(encoder.params["source"])


def train(run: TrainingRun) -> Trained:
    encoder = run.require_reference("an encoder's (text, vector) pairs")
    p, url, collection_id, holdout = run.params, run.url, run.collection_id, run.spec.holdout
    source = encoder_source(encoder)
    torch.manual_seed(int(p["seed"]))
    model = inverter.build(source, p)
    trainable = [t for name, t in model.named_parameters() if not name.startswith(inverter.EMBEDDER_PREFIX)]
    optimiser = torch.optim.AdamW(trainable, lr=float(p["lr"]))
    train_pairs = CollectionPairs(url, collection_id, encoder.id, "train", holdout)
    val_pairs = CollectionPairs(url, collection_id, encoder.id, "heldout", holdout)
    rng = random.Random(int(p["seed"]))
    history: list[dict[str, float | None]] = []
    for epoch in range(int(p["epochs"])):
        model.train()
        total, n = 0.0, 0
        for batch in batched(train_pairs, int(p["batch_size"])):
            run.report("training", epoch, int(p["epochs"]), "epochs")
            rng.shuffle(batch)
            optimiser.zero_grad()
            loss = inverter.loss(model, [b[1] for b in batch], np.stack([b[2] for b in batch]))
            loss.backward()
            optimiser.step()
            total, n = total + loss.item() * len(batch), n + len(batch)
        if n == 0:
            raise ValueError(f"no (text, vector) pairs of {encoder.label} to learn from: embed the collection first")
        model.eval()
        val_total, val_n = 0.0, 0
        with torch.no_grad():
            for batch in batched(val_pairs, 64):
                val_loss = inverter.loss(model, [b[1] for b in batch], np.stack([b[2] for b in batch]))
                val_total, val_n = val_total + val_loss.item() * len(batch), val_n + len(batch)
        history.append({"epoch": epoch + 1, "train_loss": total / n, "val_loss": val_total / val_n if val_n else None})
        log.info("vec2text epoch %d: train loss %.4f, val loss %s", epoch + 1, total / n, history[-1]["val_loss"])
    recorded = {
        **p,
        "encoder_model_id": encoder.id,
        "encoder": encoder.label,
        "encoder_source": source,
    }
    return Trained(
        artifact=inverter.to_artifact(model),
        dim=encoder.dim,
        params=recorded,
        metrics={"train_loss": history[-1]["train_loss"], "val_loss": history[-1]["val_loss"], "loss_history": history},
    )
