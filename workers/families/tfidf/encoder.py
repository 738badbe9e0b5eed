"""TF-IDF, optionally projected to a dense space (SVD or PCA), from arrays in an .npz artifact."""

from typing import Any

import numpy as np

from vectorkeep.workers.arrays import l2_normalize, unpack
from vectorkeep.workers.encoders.base import require_artifact
from vectorkeep.workers.encoders.text import tokenize


class TfidfFeatures:
    """Sublinear term frequency times idf over a fixed vocabulary, L2-normalised rows."""

    def __init__(self, vocabulary: list[str], idf: np.ndarray) -> None:
        self.vocabulary = vocabulary
        self.index = {term: i for i, term in enumerate(vocabulary)}
        self.idf = idf.astype(np.float32)

    def transform(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.vocabulary)), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in tokenize(text):
                col = self.index.get(token)
                if col is not None:
                    out[row, col] += 1.0
        np.log1p(out, out=out)
        out *= self.idf
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"vocabulary": np.array(self.vocabulary), "idf": self.idf}

    @classmethod
    def from_arrays(cls, arrays: Any) -> "TfidfFeatures":
        return cls([str(t) for t in arrays["vocabulary"]], np.asarray(arrays["idf"]))


class TfidfEncoder:
    def __init__(self, params: dict[str, Any], artifact: bytes) -> None:
        arrays = unpack(artifact)
        self.features = TfidfFeatures.from_arrays(arrays)
        self.mean = arrays.get("mean")
        self.components = arrays.get("components")

    @property
    def dim(self) -> int:
        return len(self.features.vocabulary) if self.components is None else int(self.components.shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        x = self.features.transform(texts)
        if self.components is not None:
            if self.mean is not None:
                x = x - self.mean
            x = x @ self.components
        return l2_normalize(x.astype(np.float32))


def load(params: dict[str, Any], artifact: bytes | None) -> TfidfEncoder:
    return TfidfEncoder(params, require_artifact(artifact))
