"""Edit search: a text for a vector, found by editing stored texts with the encoder as the judge.

Start from the texts nearest to the target (and from the words most likely
in it), then repeatedly make `candidates` random edits of the beam's texts
(replace, insert or delete one word, drawn by probability from the words of
the nearest texts and the word predictor's guesses), re-embed them all in one
batch, and keep the best `beam`. A candidate's score is its cosine to the
target plus `prior` times the mean probability of its words: among texts the
encoder finds equally close, the one made of likely words is likelier the
real one (cosine alone drifts into word salad that fools the encoder).
Last, words whose removal costs almost no cosine are pruned (precision).
Everything stops at the time box. A caller with another goal besides the
cosine (a map gap: land inside its cell) passes a penalty on the candidates'
vectors, subtracted from their cosine wherever texts are compared.
"""

import random
import time
from collections import Counter
from collections.abc import Callable

import numpy as np

from vectorkeep.workers.arrays import l2_normalize
from vectorkeep.workers.inverter import Inversion, Neighbour, Penalty

Encode = Callable[[list[str]], np.ndarray]

MAX_WORDS = 48
# Share of the time box kept for pruning.
PRUNE_SHARE = 0.2
# Cosine a pruned word may cost.
PRUNE_TOLERANCE = 0.003


def word_probabilities(
    neighbours: list[Neighbour], predicted: dict[str, float] | None, *, temperature: float = 0.05, mix: float = 0.5
) -> dict[str, float]:
    """P(word in the target's text): the neighbours' votes (softmax of similarity / temperature), mixed with
    the predictor's probabilities for the words it knows."""
    votes: dict[str, float] = {}
    if neighbours:
        sims = np.array([n.similarity for n in neighbours])
        weights = np.exp((sims - sims.max()) / temperature)
        weights /= weights.sum()
        for weight, n in zip(weights, neighbours, strict=True):
            for w in {w.lower() for w in n.text.split()}:
                votes[w] = votes.get(w, 0.0) + float(weight)
    if not predicted:
        return dict(votes)
    top = sorted(predicted, key=predicted.__getitem__, reverse=True)[:100]
    return {w: (1 - mix) * votes.get(w, 0.0) + mix * predicted.get(w, votes.get(w, 0.0)) for w in {*votes, *top}}


class _Vocabulary:
    """Words to edit with, drawn in proportion to their probability, in their most common written form."""

    def __init__(self, probabilities: dict[str, float], neighbours: list[Neighbour], rng: random.Random) -> None:
        forms: dict[str, Counter[str]] = {}
        for n in neighbours:
            for token in n.text.split():
                forms.setdefault(token.lower(), Counter())[token] += 1
        self.words = [w for w, p in probabilities.items() if p > 0] or ["the"]
        self.surface = {w: forms[w].most_common(1)[0][0] if w in forms else w for w in self.words}
        weights = np.array([probabilities.get(w, 1.0) for w in self.words], dtype=np.float64)
        self.cumulative = np.cumsum(weights / weights.sum())
        self.rng = rng

    def draw(self) -> str:
        i = min(int(np.searchsorted(self.cumulative, self.rng.random())), len(self.words) - 1)
        return self.surface[self.words[i]]


def _edit(tokens: list[str], vocabulary: _Vocabulary, rng: random.Random) -> list[str]:
    tokens = list(tokens)
    op = rng.random()
    if op < 0.35 and tokens:
        tokens[rng.randrange(len(tokens))] = vocabulary.draw()
    elif op < 0.7 and len(tokens) < MAX_WORDS:
        tokens.insert(rng.randrange(len(tokens) + 1), vocabulary.draw())
    elif len(tokens) > 1:
        del tokens[rng.randrange(len(tokens))]
    return tokens


def search(
    target: np.ndarray,
    encode: Encode,
    neighbours: list[Neighbour],
    probabilities: dict[str, float],
    *,
    seconds: float,
    beam: int = 4,
    candidates: int = 96,
    prior: float = 0.15,
    seed: int = 0,
    penalty: Penalty | None = None,
) -> Inversion:
    start = time.monotonic()
    deadline, prune_from = start + seconds, start + seconds * (1 - PRUNE_SHARE)
    rng = random.Random(seed)
    goal = l2_normalize(np.asarray(target, dtype=np.float32))
    vocabulary = _Vocabulary(probabilities, neighbours, rng)

    def cosines(texts: list[list[str]]) -> np.ndarray:
        """The texts' cosines to the target, less the caller's penalty."""
        vectors = l2_normalize(encode([" ".join(t) for t in texts]))
        return vectors @ goal - (penalty(vectors) if penalty is not None else 0.0)  # type: ignore[no-any-return]

    def scores(texts: list[list[str]], cos: np.ndarray) -> np.ndarray:
        likely = [np.mean([probabilities.get(w.lower(), 0.0) for w in t]) if t else 0.0 for t in texts]
        return cos + prior * np.array(likely)  # type: ignore[no-any-return]

    likely_words = sorted(probabilities, key=probabilities.__getitem__, reverse=True)[:12]
    starts = [n.text.split() for n in neighbours[:beam]] + [[vocabulary.surface[w] for w in likely_words]]
    starts = [s for s in starts if s] or [["the"]]
    cos = cosines(starts)
    # (score, cosine, tokens), best first
    beams = sorted(zip(scores(starts, cos), cos, starts, strict=True), key=lambda b: -b[0])[:beam]
    steps = 0
    while time.monotonic() < prune_from:
        steps += 1
        edited = [_edit(beams[rng.randrange(len(beams))][2], vocabulary, rng) for _ in range(candidates)]
        cos = cosines(edited)
        seen: set[str] = set()
        merged = []
        for b in sorted([*beams, *zip(scores(edited, cos), cos, edited, strict=True)], key=lambda b: -b[0]):
            key = " ".join(b[2])
            if key not in seen:
                seen.add(key)
                merged.append(b)
        beams = merged[:beam]
    _, best_cos, best = beams[0]
    best_cos = float(best_cos)
    while len(best) > 1 and time.monotonic() < deadline:
        shorter = [best[:i] + best[i + 1 :] for i in range(len(best))]
        cos = cosines(shorter)
        i = int(np.argmax(cos))
        if cos[i] < best_cos - PRUNE_TOLERANCE:
            break
        best, best_cos = shorter[i], float(cos[i])
    text = " ".join(best)
    if penalty is not None:  # the cosine reported is the plain one
        best_cos = float(l2_normalize(encode([text]))[0] @ goal)
    return Inversion(text, best_cos, steps, timed_out=False)
