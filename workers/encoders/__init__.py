"""What every encoder offers, and how a model version's encoder is loaded; the encoders
themselves live with their model family (vectorkeep.workers.families)."""

from vectorkeep.workers.encoders.base import Encoder, EncoderError
from vectorkeep.workers.encoders.registry import load_encoder

__all__ = ["Encoder", "EncoderError", "load_encoder"]
