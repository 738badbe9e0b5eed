"""Where vec2text models run, and in what precision.

Training and inversion pick the accelerator when there is one (a CUDA GPU,
else Apple's MPS) and the CPU otherwise, so the same job runs on a laptop
and on a GPU worker. On CUDA the forward pass runs under bfloat16 autocast
where the GPU supports it (about twice the throughput, and unlike float16 it
needs no loss scaling); weights stay float32, so artifacts saved from them
(on the CPU) load anywhere. The CPU and MPS run plain float32.
"""

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

import torch

Device = Literal["cpu", "cuda", "mps"]
# The choices of the vec2text kinds' `device` parameter.
CHOICES = ("auto", "cpu", "cuda")


def pick_device(preference: str | None = "auto") -> Device:
    """The device to run on: the one asked for, else the best one present (cuda, mps, cpu)."""
    if preference in ("cpu", "cuda", "mps"):
        if preference == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for, and this worker has no CUDA GPU")
        return preference  # type: ignore[return-value]
    if preference not in (None, "auto"):
        raise ValueError(f"unknown device {preference!r} (choices: {', '.join(CHOICES)})")
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def autocast(device: str | torch.device) -> AbstractContextManager[Any]:
    """Mixed precision for a forward pass on that device: bfloat16 on CUDA when supported, else none."""
    kind = torch.device(device).type
    if kind == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def device_of(model: torch.nn.Module) -> torch.device:
    """The device a model's weights are on (all of them: models are moved whole)."""
    return next(model.parameters()).device
