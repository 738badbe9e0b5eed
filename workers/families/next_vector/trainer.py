"""A next-vector model (lvm-lstm, lvm-gru, lvm-transformer) of a collection's ordered groups, trained on
windows of a source version's vectors (params.source, else the collection's search model), which the
train job reads.

The version records the collection and source, and its artifact is plain
arrays; it is then ready to be gated by vk.activate.
"""

from vectorkeep.workers.families.next_vector import lvm
from vectorkeep.workers.training import Trained, TrainingRun, of_vectors


def train(run: TrainingRun) -> Trained:
    source, base = of_vectors(run)
    p, kind = run.params, run.spec.kind.name
    windows = lvm.Windows.from_rows(run.inputs.windows(source, int(p["context"])), int(p["context"]), source.dim)
    model, metrics = lvm.train(windows, kind, p, run.report)
    return Trained(lvm.artifact(model), source.dim, {**base, **p, "dim": source.dim}, metrics)
