"""Doc2Vec (gensim) trained on a collection's text.

Memory: the vocabulary, plus gensim's table of one vector per training row
(rows x vector_size floats); the text itself is streamed, never held.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vectorkeep.workers.encoders.doc2vec import to_bytes
from vectorkeep.workers.encoders.text import stable_hash, tokenize
from vectorkeep.workers.trainers.data import CollectionTexts
from vectorkeep.workers.trainers.result import Trained

log = logging.getLogger(__name__)

DEFAULTS = {"vector_size": 64, "epochs": 20, "min_count": 2, "window": 5, "dm": 1, "seed": 42, "infer_epochs": 20}


@dataclass(frozen=True)
class _Tagged:
    texts: CollectionTexts

    def __iter__(self) -> Iterator[Any]:
        from gensim.models.doc2vec import TaggedDocument

        for pk, body in self.texts:
            yield TaggedDocument(tokenize(body), [pk])


def train(texts: CollectionTexts, params: dict[str, Any]) -> Trained:
    from gensim.models.doc2vec import Doc2Vec

    p = {**DEFAULTS, **params}
    corpus = _Tagged(texts)
    # One thread and a stable hash: the same data and seed give the same model.
    model = Doc2Vec(
        vector_size=int(p["vector_size"]),
        window=int(p["window"]),
        min_count=int(p["min_count"]),
        epochs=int(p["epochs"]),
        dm=int(p["dm"]),
        seed=int(p["seed"]),
        workers=1,
        hashfxn=stable_hash,
    )
    model.build_vocab(corpus)
    log.info("doc2vec: %d documents, %d words in the vocabulary", model.corpus_count, len(model.wv))
    model.train(corpus, total_examples=model.corpus_count, epochs=model.epochs)
    return Trained(
        artifact=to_bytes(model),
        dim=int(p["vector_size"]),
        params=p,
        metrics={"documents": model.corpus_count, "vocabulary": len(model.wv)},
    )
