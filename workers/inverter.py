"""What every inverter offers: a text for a target vector, within a time box.

The registry (vectorkeep.db.kinds) names each inverter kind's loader, in its
model family (vectorkeep.workers.families): it takes the version, its
artifact and the loaded encoder it inverts, and returns an Inverter.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vectorkeep.db.records import ModelVersion

# Unit vectors of candidate texts -> a penalty each (0: no objection), in units of cosine.
Penalty = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Neighbour:
    """A stored text near the target, and its similarity to it."""

    text: str
    similarity: float


@dataclass(frozen=True)
class Inversion:
    text: str
    cosine: float
    steps_run: int
    timed_out: bool


class Inverter(Protocol):
    version: ModelVersion

    def invert(
        self, target: np.ndarray, neighbours: list[Neighbour], seconds: float, penalty: Penalty | None = None
    ) -> Inversion:
        """A text for the target; neighbours are the stored texts nearest to it, nearest first; penalty, a
        caller's objection to candidates' vectors beside the cosine (inverters that search may use it)."""
        ...
