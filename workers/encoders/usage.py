"""What an encoder behind an API used: kept per version and job in vk.api_usage."""

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class Usage:
    requests: int = 0  # requests answered with vectors
    inputs: int = 0  # texts embedded (the probe sentence not counted)
    tokens: int = 0  # as the provider counted them (estimated when its answer does not say)
    retries: int = 0
    throttled_seconds: float = 0.0  # waited for a 429, a back-off or the per-minute budgets
    failures: int = 0  # requests answered with an error, or not answered

    def add(self, other: "Usage") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_params(self) -> dict[str, Any]:
        return asdict(self)

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


def take_usage(encoder: object) -> Usage | None:
    """What the encoder used since last asked (None: a local encoder, which uses no API)."""
    take = getattr(encoder, "take_usage", None)
    return take() if take is not None else None
