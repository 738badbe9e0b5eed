"""How close recovered texts are to the originals: exact match, token F1, BLEU, cosine.

(Scores of recovered text; the worker's Prometheus metrics are vectorkeep.workers.metrics.)"""

from collections import Counter

import numpy as np


def _tokens(text: str) -> list[str]:
    return text.lower().split()


def token_f1(hypothesis: str, reference: str) -> float:
    hyp, ref = _tokens(hypothesis), _tokens(reference)
    if not hyp or not ref:
        return float(hyp == ref)
    common = sum((Counter(hyp) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(hyp), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def bleu(hypotheses: list[str], references: list[str]) -> float | None:
    """Corpus BLEU (sacrebleu), or None when sacrebleu is not installed."""
    try:
        import sacrebleu
    except ImportError:
        return None
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def summary(hypotheses: list[str], references: list[str], cosines: list[float]) -> dict[str, float | int | None]:
    pairs = list(zip(hypotheses, references, strict=True))
    if not pairs:
        return {"n": 0, "exact_match": None, "token_f1": None, "bleu": None, "mean_cosine": None}
    return {
        "n": len(pairs),
        "exact_match": float(np.mean([h.strip() == r.strip() for h, r in pairs])),
        "token_f1": float(np.mean([token_f1(h, r) for h, r in pairs])),
        "bleu": bleu(hypotheses, references),
        "mean_cosine": float(np.mean(cosines)) if cosines else None,
    }
