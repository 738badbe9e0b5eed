"""Plain typed records of rows the Python side reads."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ModelVersion:
    """A row of vk.models."""

    id: int
    name: str
    version: int
    kind: str
    dim: int
    distance: str
    params: dict[str, Any] = field(default_factory=dict)
    fingerprint: np.ndarray | None = None
    status: str = "ready"

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Claimed:
    """A locked queue row with the current text of its source row (None: no text)."""

    collection_id: int
    pk: str
    model_id: int
    attempts: int
    body: str | None
