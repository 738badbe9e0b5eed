"""An edit-search version as an Inverter (vectorkeep.workers.inverter): the search, with its word predictor.

The registry (vectorkeep.db.kinds) names load_edit_search as the edit-search-inverter kind's loader.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.families.edit_search import search as edit_search
from vectorkeep.workers.families.edit_search.words import WordPredictor
from vectorkeep.workers.inverter import Inversion, Inverter, Neighbour, Penalty


@dataclass
class EditSearch:
    version: ModelVersion
    encoder: Encoder
    predictor: WordPredictor

    def invert(
        self, target: np.ndarray, neighbours: list[Neighbour], seconds: float, penalty: Penalty | None = None
    ) -> Inversion:
        p = self.version.params
        probabilities = edit_search.word_probabilities(neighbours, self.predictor.probabilities(target))
        return edit_search.search(
            target,
            self.encoder.encode,
            neighbours,
            probabilities,
            seconds=seconds,
            beam=int(p.get("beam", 4)),
            candidates=int(p.get("candidates", 96)),
            prior=float(p.get("prior", 0.15)),
            seed=int(p.get("seed", 42)),
            penalty=penalty,
        )


def load_edit_search(version: ModelVersion, artifact: bytes, encoder: Encoder, options: dict[str, Any]) -> Inverter:
    return EditSearch(version, encoder, WordPredictor.from_artifact(artifact))
