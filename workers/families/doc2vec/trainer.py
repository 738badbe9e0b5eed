"""Doc2Vec (gensim) trained on a collection's text.

Memory: the vocabulary, plus gensim's table of one vector per training row
(rows x vector_size floats); the text itself is streamed, never held.
"""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vectorkeep.workers.encoders.text import stable_hash, tokenize
from vectorkeep.workers.families.doc2vec.encoder import to_bytes
from vectorkeep.workers.training import Trained, TrainingRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Tagged:
    texts: Iterable[tuple[str, str]]

    def __iter__(self) -> Iterator[Any]:
        from gensim.models.doc2vec import TaggedDocument

        for pk, body in self.texts:
            yield TaggedDocument(tokenize(body), [pk])


def _progress(run: TrainingRun, epochs: int) -> Any:
    """A gensim callback reporting each epoch (and stopping a cancelled job there)."""
    from gensim.models.callbacks import CallbackAny2Vec

    class Progress(CallbackAny2Vec):  # type: ignore[misc]
        done = 0

        def on_epoch_end(self, model: Any) -> None:
            self.done += 1
            run.report("training", self.done, epochs, "epochs")

    return Progress()


def train(run: TrainingRun) -> Trained:
    from gensim.models.doc2vec import Doc2Vec

    p = run.params
    corpus = _Tagged(run.texts())
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
    model.train(
        corpus, total_examples=model.corpus_count, epochs=model.epochs, callbacks=[_progress(run, model.epochs)]
    )
    return Trained(
        artifact=to_bytes(model),
        dim=int(p["vector_size"]),
        params=p,
        metrics={"documents": model.corpus_count, "vocabulary": len(model.wv)},
    )
