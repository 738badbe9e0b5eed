"""Invert one vector: generate, re-embed, keep the closest, correct, within a time box.

Each step generates beam_width candidates and re-embeds them with the
encoder; the candidate whose vector is closest (cosine) to the target wins.
Correction without a trained corrector model: the next step conditions the
inverter on the target pushed away from where the best hypothesis landed
(target + (target - hypothesis)), a step in embedding space toward the
missing meaning. The best text over all steps is kept, with its cosine.
"""

import time
from typing import Any

import numpy as np

from vectorkeep.workers.arrays import l2_normalize
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.families.vec2text.model import generate
from vectorkeep.workers.inverter import Inversion


def invert(
    model: Any, encoder: Encoder, target: np.ndarray, *, steps: int = 1, beam_width: int = 4, max_seconds: float = 10.0
) -> Inversion:
    start = time.monotonic()
    goal = l2_normalize(np.asarray(target, dtype=np.float32))
    query = goal
    best_text, best_cosine, steps_run, timed_out = "", -1.0, 0, False
    for step in range(steps + 1):
        candidates = generate(model, query[None, :], beam_width=beam_width)[0]
        vectors = l2_normalize(encoder.encode(candidates))
        cosines = vectors @ goal
        i = int(np.argmax(cosines))
        if cosines[i] > best_cosine:
            best_text, best_cosine = candidates[i], float(cosines[i])
        steps_run = step
        if time.monotonic() - start > max_seconds:
            timed_out = step < steps
            break
        query = l2_normalize(goal + (goal - vectors[i]))
    return Inversion(best_text, best_cosine, steps_run, timed_out)
