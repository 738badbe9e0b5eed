"""An edit-search inverter for one encoder version: the word predictor it searches with,
trained on the database's own (text, vector) pairs of that version (training rows only).

The search itself needs no training: it edits stored texts and asks the
encoder. Memory: the training pairs (at most max_pairs) and a label row each.
"""

from itertools import islice

from vectorkeep.workers.families.edit_search import words
from vectorkeep.workers.training import Trained, TrainingRun


def train(run: TrainingRun) -> Trained:
    encoder = run.require_reference("an encoder's (text, vector) pairs")
    p = run.params
    pairs = run.pairs(encoder, "train")
    predictor, metrics = words.train(
        ((text, vector) for _, text, vector in islice(pairs, int(p["max_pairs"]))),
        vocabulary_size=int(p["vocabulary"]),
        hidden=int(p["hidden"]),
        epochs=int(p["epochs"]),
        lr=float(p["lr"]),
        seed=int(p["seed"]),
        report=run.report,
    )
    return Trained(
        artifact=predictor.to_artifact(),
        dim=encoder.dim,
        params={**p, "holdout": run.spec.holdout, "encoder_model_id": encoder.id, "encoder": encoder.label},
        metrics={**metrics, "trained_on": f"{metrics['pairs']} (text, vector) pairs of {encoder.label}"},
    )
