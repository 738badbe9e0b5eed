"""Where models run, in what precision, and how many texts an encoder takes at once.

Encoders, inverters and trainers pick the accelerator when there is one (a
CUDA GPU, else Apple's MPS) and the CPU otherwise, so the same worker runs on
a laptop and on a GPU machine. An operator overrides the choice with
VECTORKEEP_DEVICE (auto, cpu, cuda or mps) and the encoders' batch size with
VECTORKEEP_ENCODE_BATCH; a device asked for that is not there is an error,
never a silent fall back to the CPU.

Precision: encoders run their weights in float16 on an accelerator (about
twice the throughput; float16 rather than bfloat16 because its finer mantissa
keeps vectors within the fingerprint check's cosine of the float32 ones) and
always return float32 arrays. vec2text training and inversion keep float32
weights and run the forward pass under bfloat16 autocast on CUDA where the
GPU supports it (unlike float16 it needs no loss scaling), so artifacts saved
from them load anywhere. The CPU runs plain float32.

torch is imported only when a device is picked: it is seconds of every
command line's start.
"""

import os
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

Device = Literal["cpu", "cuda", "mps"]
CHOICES = ("auto", "cpu", "cuda", "mps")
DEVICE_ENV = "VECTORKEEP_DEVICE"
BATCH_ENV = "VECTORKEEP_ENCODE_BATCH"


def pick_device(preference: str | None = None) -> Device:
    """The device to run on: the one asked for (a model's `device` parameter), else
    $VECTORKEEP_DEVICE, else the best one present (cuda, then mps, then cpu).

    None and "auto" defer to the variable, then to what is present. Raises ValueError
    for an unknown name, or for a device asked for that this machine does not have.
    """
    import torch

    if preference in (None, "auto"):
        preference = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
    if preference not in CHOICES:
        raise ValueError(f"unknown device {preference!r} (choices: {', '.join(CHOICES)}; from {DEVICE_ENV} or a model)")
    mps = getattr(torch.backends, "mps", None)
    has_mps = mps is not None and mps.is_available()
    if preference == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, and this worker has no CUDA GPU (torch sees none)")
    if preference == "mps" and not has_mps:
        raise ValueError("device 'mps' was asked for, and this worker has no Apple MPS device (torch sees none)")
    if preference != "auto":
        return preference  # type: ignore[return-value]
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if has_mps else "cpu"


def encoder_dtype(device: str) -> Any:
    """The dtype an encoder's weights run in on that device: float16 on an accelerator, else None (float32)."""
    import torch

    return torch.float16 if device in ("cuda", "mps") else None


def encode_batch_size(device: str, *, cpu: int, accelerator: int) -> int:
    """Texts per forward pass: $VECTORKEEP_ENCODE_BATCH, else the encoder's default for that device.

    On a CPU small batches win (less padding to the batch's longest text); an
    accelerator wants large ones to keep busy.
    """
    value = os.environ.get(BATCH_ENV, "").strip()
    if not value:
        return cpu if device == "cpu" else accelerator
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{BATCH_ENV} must be a positive whole number of texts, not {value!r}")
    return int(value)


def autocast(device: Any) -> AbstractContextManager[Any]:
    """Mixed precision for a forward pass on that device: bfloat16 on CUDA when supported, else none."""
    import torch

    kind = torch.device(device).type
    if kind == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def device_of(model: Any) -> Any:
    """The torch.device a model's weights are on (all of them: models are moved whole)."""
    return next(model.parameters()).device
