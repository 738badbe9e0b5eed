"""What every encoder offers the worker."""

from typing import Protocol

import numpy as np


class EncoderError(Exception):
    """An encoder cannot be loaded, or is not the one its model version was registered with."""


class Encoder(Protocol):
    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str]) -> np.ndarray:
        """A float32 array of shape (len(texts), dim)."""
        ...
