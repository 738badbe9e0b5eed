"""Arrays shared by encoders, trainers, maps and inverters: unit vectors, and
artifacts as plain .npz bytes."""

import io

import numpy as np


def pack(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays to bytes without pickle (np.savez), so loading an artifact runs no code."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def unpack(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Unit length along the last axis (a vector, or each row); zero stays zero."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
