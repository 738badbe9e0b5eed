"""A vec2text inverter version as an Inverter (vectorkeep.workers.inverter), with or without its corrector.

The registry (vectorkeep.db.kinds) names load_vec2text as the vec2text-inverter
kind's loader; load_corrector gives an inverter loaded apart its corrector.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.families.vec2text import corrector as corrector_model
from vectorkeep.workers.families.vec2text.corrector import Corrector
from vectorkeep.workers.families.vec2text.invert import invert
from vectorkeep.workers.inverter import Inversion, Inverter, Neighbour, Penalty


@dataclass
class Vec2Text:
    """A vec2text inverter; with a corrector (workers.families.vec2text.corrector), vec2text's correction steps:
    each step the corrector rewrites the latest hypothesis from its vector and the target's. Without one,
    the correction is a step in embedding space (workers.families.vec2text.invert)."""

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


def load_vec2text(version: ModelVersion, artifact: bytes, encoder: Encoder, options: dict[str, Any]) -> Inverter:
    """A vec2text inverter on the worker's device (options.device overrides auto); options.corrector, when
    given, is a corrector trained for it (load_corrector), whose steps then replace the embedding-space ones."""
    from vectorkeep.workers.families.vec2text import model as inverter_model

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
