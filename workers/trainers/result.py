"""What a trainer hands back to the train job."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Trained:
    artifact: bytes
    dim: int
    # Recorded on the model version: everything its encoder needs besides the artifact.
    params: dict[str, Any]
    # The kind's own figures (losses, vocabulary, explained variance...).
    metrics: dict[str, Any] = field(default_factory=dict)
