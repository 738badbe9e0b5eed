"""Inverters of every kind behind one interface: a text for a target vector, within a time box.

The registry (vectorkeep.db.kinds) names each inverter kind's loader here:
it takes the version, its artifact and the loaded encoder it inverts.
"""

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.inversion import corrector as corrector_model
from vectorkeep.workers.inversion import edit_search
from vectorkeep.workers.inversion.corrector import Corrector
from vectorkeep.workers.inversion.edit_search import Neighbour, Penalty
from vectorkeep.workers.inversion.invert import Inversion, invert
from vectorkeep.workers.inversion.words import WordPredictor


class Inverter(Protocol):
    version: ModelVersion

    def invert(
        self, target: np.ndarray, neighbours: list[Neighbour], seconds: float, penalty: Penalty | None = None
    ) -> Inversion:
        """A text for the target; neighbours are the stored texts nearest to it, nearest first; penalty, a
        caller's objection to candidates' vectors beside the cosine (inverters that search may use it)."""
        ...


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


@dataclass
class Vec2Text:
    """A vec2text inverter; with a corrector (workers.inversion.corrector), vec2text's correction steps:
    each step the corrector rewrites the latest hypothesis from its vector and the target's. Without one,
    the correction is a step in embedding space (workers.inversion.invert)."""

    version: ModelVersion
    encoder: Encoder
    model: Any
    steps: int = 1
    beam_width: int = 4
    corrector: Corrector | None = None

    def invert(
        self, target: np.ndarray, neighbours: list[Neighbour], seconds: float, penalty: Penalty | None = None
    ) -> Inversion:
        if self.corrector is not None:
            return self.corrector.invert(
                self.model, self.encoder, target, steps=self.steps, beam_width=self.beam_width, max_seconds=seconds
            )
        return invert(
            self.model, self.encoder, target, steps=self.steps, beam_width=self.beam_width, max_seconds=seconds
        )


def load_edit_search(version: ModelVersion, artifact: bytes, encoder: Encoder, options: dict[str, Any]) -> Inverter:
    return EditSearch(version, encoder, WordPredictor.from_artifact(artifact))


def load_vec2text(version: ModelVersion, artifact: bytes, encoder: Encoder, options: dict[str, Any]) -> Inverter:
    """A vec2text inverter on the worker's device (options.device overrides auto); options.corrector, when
    given, is a corrector trained for it (load_corrector), whose steps then replace the embedding-space ones."""
    from vectorkeep.workers.inversion import model as inverter_model

    model = inverter_model.from_artifact(
        version.params["encoder_source"], version.params, artifact, options.get("device")
    )
    return Vec2Text(
        version,
        encoder,
        model,
        steps=int(options.get("steps", 1)),
        beam_width=int(options.get("beam_width", 4)),
        corrector=options.get("corrector"),
    )


def load_corrector(version: ModelVersion, artifact: bytes, encoder: Encoder, device: str | None = "auto") -> Corrector:
    """The corrector of a vec2text-corrector version, for Vec2Text(corrector=...) of its inverter
    (version.params.inverter_model_id)."""
    if encoder.dim != version.dim:
        raise ValueError(f"{version.label} corrects {version.dim}-d vectors; the encoder makes {encoder.dim}-d vectors")
    return corrector_model.from_artifact(
        version.params["encoder_source"], version.params, artifact, version.dim, device
    )
