"""From a model version to a loaded encoder, checked against its fingerprint."""

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.encoders.base import Encoder, EncoderError

log = logging.getLogger(__name__)

# Vectors of the same encoder for the same text agree to float noise across
# machines and BLAS builds; another encoder lands far below this.
FINGERPRINT_MIN_COSINE = 0.999

# Kinds whose weights are trained here and stored in vk.model_artifacts.
TRAINED_KINDS = frozenset({"doc2vec", "tfidf", "tfidf-mlp"})


def _sentence_transformers(params: dict[str, Any], artifact: bytes | None) -> Encoder:
    from vectorkeep.workers.encoders.sentence_transformers import SentenceTransformerEncoder

    source = params.get("source")
    if not source:
        raise EncoderError("a sentence-transformers model needs params.source (a hub name or a path)")
    return SentenceTransformerEncoder(str(source))


def _hf_mean_pool(params: dict[str, Any], artifact: bytes | None) -> Encoder:
    from vectorkeep.workers.encoders.hf_mean_pool import MeanPoolEncoder

    return MeanPoolEncoder(params)


def _artifact(artifact: bytes | None) -> bytes:
    if artifact is None:
        raise EncoderError("a model trained here needs its artifact from vk.model_artifacts")
    return artifact


def _doc2vec(params: dict[str, Any], artifact: bytes | None) -> Encoder:
    from vectorkeep.workers.encoders.doc2vec import Doc2VecEncoder

    return Doc2VecEncoder(params, _artifact(artifact))


def _tfidf(params: dict[str, Any], artifact: bytes | None) -> Encoder:
    from vectorkeep.workers.encoders.tfidf import TfidfEncoder

    return TfidfEncoder(params, _artifact(artifact))


def _tfidf_mlp(params: dict[str, Any], artifact: bytes | None) -> Encoder:
    from vectorkeep.workers.encoders.tfidf_mlp import TfidfMlpEncoder

    return TfidfMlpEncoder(params, _artifact(artifact))


LOADERS: dict[str, Callable[[dict[str, Any], bytes | None], Encoder]] = {
    "sentence-transformers": _sentence_transformers,
    "hf-mean-pool": _hf_mean_pool,
    "doc2vec": _doc2vec,
    "tfidf": _tfidf,
    "tfidf-mlp": _tfidf_mlp,
}


def load_kind(kind: str, params: dict[str, Any], artifact: bytes | None = None) -> Encoder:
    """Load an encoder of a kind from its params (and artifact), before it has a registry row."""
    loader = LOADERS.get(kind)
    if loader is None:
        raise EncoderError(f"model kind {kind!r} cannot encode here (known kinds: {', '.join(sorted(LOADERS))})")
    return loader(params, artifact)


def load_encoder(model: ModelVersion, artifact: bytes | None = None) -> Encoder:
    """Load the encoder of a model version; its dimension must match the registry."""
    try:
        encoder = load_kind(model.kind, model.params, artifact)
    except EncoderError as exc:
        raise EncoderError(f"{model.label}: {exc}") from exc
    if encoder.dim != model.dim:
        raise EncoderError(
            f"encoder of {model.label} makes {encoder.dim}-dimensional vectors, "
            f"the model is registered with {model.dim}"
        )
    return encoder


def fingerprint_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denom) if denom else 0.0


def check_fingerprint(model: ModelVersion, probe_vector: np.ndarray) -> None:
    """Refuse an encoder whose probe vector differs from the one recorded for the version."""
    if model.fingerprint is None:
        return
    recorded = np.asarray(model.fingerprint, dtype=np.float32)
    if recorded.shape != probe_vector.shape:
        raise EncoderError(
            f"encoder for {model.label} gives a {probe_vector.shape[0]}-d probe vector, "
            f"the recorded fingerprint is {recorded.shape[0]}-d"
        )
    if np.allclose(recorded, probe_vector, atol=1e-6):
        return  # also covers a zero probe vector (a TF-IDF vocabulary without the probe's words)
    cosine = fingerprint_cosine(recorded, probe_vector)
    if cosine < FINGERPRINT_MIN_COSINE:
        raise EncoderError(
            f"encoder loaded for {model.label} is not the one it was registered with: "
            f"probe vector cosine {cosine:.4f} < {FINGERPRINT_MIN_COSINE} to the recorded fingerprint"
        )
