"""What every encoder offers the worker."""

from typing import Any, Protocol

import numpy as np


class EncoderError(Exception):
    """An encoder cannot be loaded, or is not the one its model version was registered with."""


class ProviderBusy(EncoderError):
    """An encoder behind an API (workers/families/text/api.py) cannot embed now: it is throttled, failing
    or unreachable. Retry after retry_after seconds. Says nothing about the texts: their rows are
    deferred, never failed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderThrottled(ProviderBusy):
    """The provider answered 429: it says how long to wait (Retry-After), or the back-off does."""


class ProviderChanged(ProviderBusy):
    """The provider's vectors no longer match the version's fingerprint (or its dimension)."""


class InputRejected(EncoderError):
    """The provider refused the request for what it holds (400, 413, 422): one of its texts is bad."""


def require_artifact(artifact: bytes | None) -> bytes:
    """A model trained here loads from its artifact (vk.model_artifacts)."""
    if artifact is None:
        raise EncoderError("a model trained here needs its artifact from vk.model_artifacts")
    return artifact


class Encoder(Protocol):
    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str]) -> np.ndarray:
        """A float32 array of shape (len(texts), dim)."""
        ...


def truncation_flags(encoder: Encoder, texts: list[str]) -> list[bool]:
    """Which texts the encoder cut to its window; encoders without a window cut none."""
    truncated = getattr(encoder, "truncated", None)
    return list(truncated(texts)) if truncated is not None else [False] * len(texts)


def tokenizer_spans(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """Character spans of a Hugging Face (fast) tokenizer's tokens, special tokens left out."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return [(int(a), int(b)) for a, b in encoded["offset_mapping"]]
