"""gensim Doc2Vec: new rows get infer_vector(), made deterministic.

gensim seeds inference from Python's hash() of the text (salted per process)
and from the model's shared random state (which every call advances), so the
same text would get a slightly different vector in every worker. The encoder
replaces both with seeds derived from the text itself, so any worker, any
time, gives the same vector: the fingerprint check depends on it.
"""

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from vectorkeep.workers.encoders.base import require_artifact
from vectorkeep.workers.encoders.text import stable_hash, tokenize


def _stable_weak_vector(size: int, seed_string: str | None = None, hashfxn: Any = None) -> np.ndarray:
    rng = np.random.Generator(np.random.SFC64(stable_hash(seed_string or "") & 0xFFFFFFFF))
    return ((rng.random(size) - 0.5) / size).astype(np.float32)


def _patch_gensim() -> None:
    import gensim.models.doc2vec as gensim_doc2vec

    gensim_doc2vec.pseudorandom_weak_vector = _stable_weak_vector  # type: ignore[attr-defined]


def to_bytes(model: Any) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        model.save(str(path), separately=[])
        return path.read_bytes()


def from_bytes(data: bytes) -> Any:
    from gensim.models.doc2vec import Doc2Vec

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        path.write_bytes(data)
        return Doc2Vec.load(str(path))


class Doc2VecEncoder:
    def __init__(self, params: dict[str, Any], artifact: bytes) -> None:
        _patch_gensim()
        self._model = from_bytes(artifact)
        self._epochs = int(params.get("infer_epochs", params.get("epochs", 20)))
        self._seed = int(params.get("seed", 42))

    @property
    def dim(self) -> int:
        return int(self._model.vector_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            self._model.random = np.random.RandomState((self._seed ^ stable_hash(text)) & 0xFFFFFFFF)
            out[i] = self._model.infer_vector(tokenize(text), epochs=self._epochs)
        return out


def load(params: dict[str, Any], artifact: bytes | None) -> Doc2VecEncoder:
    return Doc2VecEncoder(params, require_artifact(artifact))
