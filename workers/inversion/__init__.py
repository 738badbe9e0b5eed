"""Generative inversion (vec2text): text back from a vector by a trained T5 inverter."""
