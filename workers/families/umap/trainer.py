"""A map (umap) of a collection's vectors under a source version (params.source, else the collection's
search model), trained on those vectors, which the train job reads.

The version records the collection and source, and its artifact is plain
arrays; the train job then places every row (vk.coordinates).
"""

import numpy as np

from vectorkeep.workers.families.umap import model as umap
from vectorkeep.workers.training import Trained, TrainingRun, of_vectors

MAX_MAP_ROWS = 20_000


def train(run: TrainingRun) -> Trained:
    source, base = of_vectors(run)
    vectors = run.inputs.vectors(source)
    if len(vectors) > MAX_MAP_ROWS:  # the exact neighbour graph is quadratic: a stable sample
        vectors = vectors[:: len(vectors) // MAX_MAP_ROWS + 1]
    model, metrics = umap.train(np.stack(vectors), run.params, run.report)
    return Trained(umap.artifact(model), 2, {**base, **model.params}, metrics)
