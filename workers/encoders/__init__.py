"""Encoders turn texts into vectors; one module per model kind."""

from vectorkeep.workers.encoders.base import Encoder, EncoderError
from vectorkeep.workers.encoders.registry import load_encoder

__all__ = ["Encoder", "EncoderError", "load_encoder"]
