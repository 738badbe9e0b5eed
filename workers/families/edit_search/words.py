"""Which words a vector's text holds: a small network over a vocabulary.

Sentence embeddings leak most of their words (mean pooling keeps a trace of
every token), so a two-layer network trained on the database's own (text,
vector) pairs predicts, for each of the collection's most frequent words,
the probability that it occurs in the text behind a vector. Edit search
draws its edits from these words and prefers texts made of them.

Words are whitespace tokens, lower-cased: the unit token F1 is measured in,
and what the encoder sees.
"""

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from vectorkeep.workers.arrays import pack, unpack
from vectorkeep.workers.progress import Report

log = logging.getLogger(__name__)


def words(text: str) -> list[str]:
    return text.lower().split()


def _network(dim: int, hidden: int, vocabulary: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, vocabulary))


@dataclass
class WordPredictor:
    vocabulary: list[str]
    network: torch.nn.Sequential

    def probabilities(self, vector: np.ndarray) -> dict[str, float]:
        """Each vocabulary word's probability of being in the text behind the vector."""
        with torch.no_grad():
            logits = self.network(torch.from_numpy(np.asarray(vector, dtype=np.float32)[None, :]))[0]
        return dict(zip(self.vocabulary, torch.sigmoid(logits).numpy().tolist(), strict=True))

    def to_artifact(self) -> bytes:
        state = {f"net.{k}": v.detach().numpy() for k, v in self.network.state_dict().items()}
        return pack({"vocabulary": np.array(self.vocabulary), **state})

    @classmethod
    def from_artifact(cls, artifact: bytes) -> "WordPredictor":
        arrays = unpack(artifact)
        vocabulary = [str(w) for w in arrays.pop("vocabulary")]
        state = {k.removeprefix("net."): torch.from_numpy(v) for k, v in arrays.items()}
        dim, hidden = state["0.weight"].shape[1], state["0.weight"].shape[0]
        network = _network(dim, hidden, len(vocabulary))
        network.load_state_dict(state)
        network.eval()
        return cls(vocabulary, network)


def train(
    pairs: Iterable[tuple[str, np.ndarray]],
    *,
    vocabulary_size: int,
    hidden: int,
    epochs: int,
    lr: float,
    seed: int,
    report: Report,
) -> tuple[WordPredictor, dict[str, float]]:
    """A predictor fitted on (text, vector) pairs (held in memory: texts, vectors and a row of labels each)."""
    texts, vectors = [], []
    for text, vector in pairs:
        texts.append(text)
        vectors.append(np.asarray(vector, dtype=np.float32))
    if not texts:
        raise ValueError("no (text, vector) pairs to learn words from: embed the collection first")
    counts = Counter(w for t in texts for w in set(words(t)))
    vocabulary = [w for w, _ in counts.most_common(vocabulary_size)]
    index = {w: i for i, w in enumerate(vocabulary)}
    labels = np.zeros((len(texts), len(vocabulary)), dtype=np.float32)
    for row, text in enumerate(texts):
        for w in set(words(text)):
            if w in index:
                labels[row, index[w]] = 1.0
    torch.manual_seed(seed)
    x, y = torch.from_numpy(np.stack(vectors)), torch.from_numpy(labels)
    network = _network(x.shape[1], hidden, len(vocabulary))
    optimiser = torch.optim.Adam(network.parameters(), lr=lr)
    loss = torch.tensor(0.0)
    for epoch in range(epochs):
        report("training", epoch, epochs, "epochs")
        order = torch.randperm(len(x))
        for start in range(0, len(x), 128):
            batch = order[start : start + 128]
            optimiser.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(network(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
    network.eval()
    log.info("word predictor: %d words, %d pairs, final loss %.4f", len(vocabulary), len(texts), loss.item())
    return WordPredictor(vocabulary, network), {
        "vocabulary": len(vocabulary),
        "pairs": len(texts),
        "train_loss": round(float(loss.item()), 5),
    }
