"""From a model version to a loaded encoder, checked against its fingerprint."""

import logging
from typing import Any

import numpy as np

from vectorkeep.db.records import ModelVersion
from vectorkeep.workers import kinds
from vectorkeep.workers.encoders.base import Encoder, EncoderError, ProviderBusy

log = logging.getLogger(__name__)

# Vectors of the same encoder for the same text agree to float noise across
# machines and BLAS builds; another encoder lands far below this.
FINGERPRINT_MIN_COSINE = 0.999


def load_kind(kind: str, params: dict[str, Any], artifact: bytes | None = None) -> Encoder:
    """Load an encoder of a kind from its params (and artifact), before it has a registry row."""
    return kinds.loader(kind)(params, artifact)


def load_encoder(model: ModelVersion, artifact: bytes | None = None) -> Encoder:
    """Load the encoder of a model version; its dimension must match the registry."""
    try:
        encoder = load_kind(model.kind, model.params, artifact)
    except ProviderBusy:
        raise  # an API that cannot answer now: the rows wait, they are not failed
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
