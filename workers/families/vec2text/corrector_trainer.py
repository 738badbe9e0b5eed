"""A vec2text corrector for one vec2text inverter version (params.inverter, default: the best ready one
for the collection's search model), trained on the pairs of the inverter's encoder.

For each batch of (text, vector) pairs the frozen inverter writes its greedy
first guess, the encoder embeds it, and the corrector learns to write the
real text from (target vector, guess's vector, guess's tokens), as vec2text
trains its corrector. Hypotheses are made batch by batch rather than cached:
memory stays one batch, at the cost of generating again each epoch.
params.extra_text adds offline texts as for the inverter (workers.families.vec2text.trainer).

The version records inverter_model_id (the inverter it corrects) and the
inverter's encoder (encoder_model_id), and its artifact carries the
inverter's own (workers.families.vec2text.corrector).
"""

import logging
import random
from typing import Any

import numpy as np
import torch

from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.arrays import l2_normalize
from vectorkeep.workers.device import autocast, pick_device
from vectorkeep.workers.families.vec2text import corrector as corrector_model
from vectorkeep.workers.families.vec2text import model as inverter_model
from vectorkeep.workers.families.vec2text.trainer import TrainingData
from vectorkeep.workers.training import Trained, TrainingRun, batched

log = logging.getLogger(__name__)

INVERTER_KIND = "vec2text-inverter"
# What a corrector keeps of its inverter's params: enough to rebuild it from the bundled artifact.
INVERTER_PARAMS = ("t5", "t5_config", "num_repeat_tokens", "max_length", "seed", "pretrained")


def inverter_of(run: TrainingRun) -> ModelVersion:
    """The vec2text inverter named by params.inverter, else the best ready one for the collection's search model
    (both resolved by the train job)."""
    version = run.models.get("inverter")
    if version is None:
        encoder = run.require_reference("the pairs of a vec2text inverter's encoder")
        raise ValueError(f"no ready vec2text inverter for {encoder.label}: train one first, or name one (inverter)")
    if version.kind != INVERTER_KIND:
        raise ValueError(f"a vec2text corrector corrects a {INVERTER_KIND}; {version.label} is {version.kind}")
    return version


def _texts_vectors(batch: list[tuple[str, str, np.ndarray]]) -> tuple[list[str], np.ndarray]:
    return [b[1] for b in batch], np.stack([b[2] for b in batch]).astype(np.float32)


def train(run: TrainingRun) -> Trained:
    p, holdout = run.params, run.spec.holdout
    inverter_version = inverter_of(run)
    encoder_version = run.inputs.version(int(inverter_version.params["encoder_model_id"]))
    source = str(inverter_version.params["encoder_source"])
    device = pick_device(p.get("device"))
    inverter_bytes = run.inputs.artifact(inverter_version)
    inverter = inverter_model.from_artifact(source, inverter_version.params, inverter_bytes, device)
    inverter.requires_grad_(False)
    encoder = run.inputs.encoder(encoder_version)
    data = TrainingData.of(run, encoder_version, encoder)
    # The corrector writes texts as long as its inverter's.
    own = {**p, "max_length": int(inverter_version.params.get("max_length", 32))}
    torch.manual_seed(int(p["seed"]))
    corrector = corrector_model.build(source, own, encoder_version.dim).to(device)
    optimiser = torch.optim.AdamW(corrector.model.parameters(), lr=float(p["lr"]))
    rng = random.Random(int(p["seed"]))
    history: list[dict[str, Any]] = []
    for epoch in range(int(p["epochs"])):
        corrector.model.train()
        total, n, guessed = 0.0, 0, 0.0
        for batch in batched(data.train, int(p["batch_size"])):
            run.report("training", epoch, int(p["epochs"]), "epochs")
            rng.shuffle(batch)
            texts, vectors = _texts_vectors(batch)
            guesses, guess_vectors = corrector_model.hypotheses(inverter, encoder, vectors)
            optimiser.zero_grad()
            with autocast(device):
                loss = corrector.loss(texts, vectors, guesses, guess_vectors)
            loss.backward()
            optimiser.step()
            total, n = total + loss.item() * len(batch), n + len(batch)
            guessed += float(np.sum(guess_vectors * l2_normalize(vectors)))
        if n == len(data.train.extra):
            raise ValueError(
                f"no (text, vector) pairs of {encoder_version.label} to learn from: embed the collection first"
            )
        corrector.model.eval()
        val_total, val_n = 0.0, 0
        with torch.no_grad():
            for batch in batched(data.heldout, 64):
                texts, vectors = _texts_vectors(batch)
                guesses, guess_vectors = corrector_model.hypotheses(inverter, encoder, vectors)
                with autocast(device):
                    val_loss = corrector.loss(texts, vectors, guesses, guess_vectors)
                val_total, val_n = val_total + val_loss.item() * len(batch), val_n + len(batch)
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": total / n,
                "val_loss": val_total / val_n if val_n else None,
                # How close the inverter's first guesses were: what the corrector starts from.
                "hypothesis_mean_cosine": guessed / n,
            }
        )
        log.info(
            "vec2text corrector epoch %d: train loss %.4f, val loss %s", epoch + 1, total / n, history[-1]["val_loss"]
        )
    recorded = {
        **own,
        "holdout": holdout,
        "inverter": inverter_version.label,
        "inverter_model_id": inverter_version.id,
        "inverter_params": {k: inverter_version.params[k] for k in INVERTER_PARAMS if k in inverter_version.params},
        "encoder_model_id": encoder_version.id,
        "encoder": encoder_version.label,
        "encoder_source": source,
    }
    return Trained(
        artifact=corrector_model.to_artifact(corrector, inverter_bytes),
        dim=encoder_version.dim,
        params=recorded,
        metrics={
            "train_loss": history[-1]["train_loss"],
            "val_loss": history[-1]["val_loss"],
            "hypothesis_mean_cosine": history[-1]["hypothesis_mean_cosine"],
            "loss_history": history,
            "trained_on": data.trained_on(n),
            "device": device,
        },
    )
