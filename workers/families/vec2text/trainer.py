"""A vec2text inverter for one encoder version, trained on the database's own
(text, vector) pairs of that version, plus offline texts when asked.

One collection is often too little text to learn a language from:
params.extra_text adds up to params.max_extra texts of workers.corpus
(standard-library docstring lines, or the sample corpus' sentences), embedded
here with the same encoder version and spread evenly among the collection's
pairs. They are only trained on: validation stays the collection's held-out
rows (the sentences come from the paragraphs `vectorkeep up` loads as its
sample collection, so on that collection they overlap its held-out rows; the
docstrings do not). The version's metrics say what it was trained on (trained_on).

Runs on the worker's accelerator when there is one (params.device), the
forward pass under bfloat16 autocast on CUDA (workers.device).
Memory: the inverter, the extra pairs, and one batch of the collection's
pairs (streamed each epoch).
"""

import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import torch

from vectorkeep.db import kinds
from vectorkeep.db.records import ModelVersion
from vectorkeep.workers import corpus
from vectorkeep.workers.device import autocast, pick_device
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.families.vec2text import model as inverter
from vectorkeep.workers.training import Pair, Trained, TrainingRun, batched

log = logging.getLogger(__name__)

# params.extra_text: where the texts come from, and how trained_on names them.
EXTRA_TEXT = {"docstrings": (corpus.docstring_lines, "docstring lines"), "sentences": (corpus.sentences, "sentences")}
ENCODE_BATCH = 64


def encoder_source(encoder: ModelVersion) -> str:
    invertible = kinds.kind("vec2text-inverter").param("encoder").kinds  # type: ignore[union-attr]
    if encoder.kind not in invertible or not encoder.params.get("source"):
        raise ValueError(
            f"a vec2text inverter needs a Hugging Face encoder ({', '.join(invertible)}); "
            f"{encoder.label} is {encoder.kind}"
        )
    return str(encoder.params["source"])


def extra_pairs(
    run: TrainingRun, encoder: ModelVersion, which: str, limit: int, loaded: Encoder | None = None
) -> list[Pair]:
    """Up to `limit` offline texts of that kind (none: no texts), each with its vector by the encoder
    (loaded: that encoder, when the caller has it loaded already)."""
    if which == "none":
        return []
    texts = list(islice(EXTRA_TEXT[which][0](), limit))
    model = loaded or run.inputs.encoder(encoder)
    vectors: list[np.ndarray] = []
    for start in range(0, len(texts), ENCODE_BATCH):
        run.report("embedding extra text", start, len(texts), "texts")
        vectors.extend(model.encode(texts[start : start + ENCODE_BATCH]))
    return [(f"{which}:{i}", text, vector) for i, (text, vector) in enumerate(zip(texts, vectors, strict=True))]


@dataclass(frozen=True)
class TrainingPairs:
    """Re-iterable training pairs: the collection's (streamed) with the extra ones spread evenly among them,
    so that every stretch of an epoch sees both kinds of text."""

    collection: Iterable[Pair]
    extra: list[Pair]
    # About how many pairs the collection yields (its training rows with text), to space the extra ones.
    expected: int

    def __iter__(self) -> Iterator[Pair]:
        every = max(self.expected, 1) / len(self.extra) if self.extra else 0.0
        i = 0
        for n, pair in enumerate(self.collection, 1):
            yield pair
            while i < len(self.extra) and (i + 1) * every <= n:
                yield self.extra[i]
                i += 1
        yield from self.extra[i:]


@dataclass(frozen=True)
class TrainingData:
    """What a vec2text model (an inverter or a corrector) learns from, and how to say so."""

    train: TrainingPairs
    heldout: Iterable[Pair]
    collection: str
    encoder: str
    extra_label: str

    @classmethod
    def of(cls, run: TrainingRun, encoder: ModelVersion, loaded: Encoder | None = None) -> "TrainingData":
        p = run.params
        which = str(p.get("extra_text") or "none")
        extra = extra_pairs(run, encoder, which, int(p.get("max_extra") or 0), loaded)
        expected = sum(1 for _ in run.texts("train")) if extra else 0
        return cls(
            train=TrainingPairs(run.pairs(encoder, "train"), extra, expected),
            heldout=run.pairs(encoder, "heldout"),
            collection=run.collection,
            encoder=encoder.label,
            extra_label=EXTRA_TEXT[which][1] if which in EXTRA_TEXT else "",
        )

    def trained_on(self, pairs: int) -> str:
        """e.g. "812 pairs of documents (minilm@1) + 1674 docstring lines", from an epoch's pair count."""
        own = pairs - len(self.train.extra)
        described = f"{own} pairs of {self.collection} ({self.encoder})"
        return described + (f" + {len(self.train.extra)} {self.extra_label}" if self.train.extra else "")


def train(run: TrainingRun) -> Trained:
    encoder = run.require_reference("an encoder's (text, vector) pairs")
    p, holdout = run.params, run.spec.holdout
    source = encoder_source(encoder)
    device = pick_device(p.get("device"))
    data = TrainingData.of(run, encoder)
    torch.manual_seed(int(p["seed"]))
    model = inverter.build(source, p).to(device)
    trainable = [t for name, t in model.named_parameters() if not name.startswith(inverter.EMBEDDER_PREFIX)]
    optimiser = torch.optim.AdamW(trainable, lr=float(p["lr"]))
    rng = random.Random(int(p["seed"]))
    history: list[dict[str, Any]] = []
    for epoch in range(int(p["epochs"])):
        model.train()
        total, n = 0.0, 0
        for batch in batched(data.train, int(p["batch_size"])):
            run.report("training", epoch, int(p["epochs"]), "epochs")
            rng.shuffle(batch)
            optimiser.zero_grad()
            with autocast(device):
                loss = inverter.loss(model, [b[1] for b in batch], np.stack([b[2] for b in batch]))
            loss.backward()
            optimiser.step()
            total, n = total + loss.item() * len(batch), n + len(batch)
        if n == len(data.train.extra):
            raise ValueError(f"no (text, vector) pairs of {encoder.label} to learn from: embed the collection first")
        model.eval()
        val_total, val_n = 0.0, 0
        with torch.no_grad():
            for batch in batched(data.heldout, 64):
                with autocast(device):
                    val_loss = inverter.loss(model, [b[1] for b in batch], np.stack([b[2] for b in batch]))
                val_total, val_n = val_total + val_loss.item() * len(batch), val_n + len(batch)
        history.append({"epoch": epoch + 1, "train_loss": total / n, "val_loss": val_total / val_n if val_n else None})
        log.info("vec2text epoch %d: train loss %.4f, val loss %s", epoch + 1, total / n, history[-1]["val_loss"])
    recorded = {
        **p,
        "holdout": holdout,
        "encoder_model_id": encoder.id,
        "encoder": encoder.label,
        "encoder_source": source,
    }
    return Trained(
        artifact=inverter.to_artifact(model),
        dim=encoder.dim,
        params=recorded,
        metrics={
            "train_loss": history[-1]["train_loss"],
            "val_loss": history[-1]["val_loss"],
            "loss_history": history,
            "trained_on": data.trained_on(n),
            "device": device,
        },
    )
