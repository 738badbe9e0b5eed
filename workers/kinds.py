"""A kind's trainer and loader, imported from the dotted paths the registry
(vectorkeep.db.kinds) declares, on first use: they pull in torch, gensim and
scikit-learn, which most processes never need."""

import importlib
from collections.abc import Callable
from typing import Any

from vectorkeep.db import kinds
from vectorkeep.workers.encoders.base import Encoder, EncoderError

Loader = Callable[[dict[str, Any], bytes | None], Encoder]

# Encoders of kinds outside the registry, added at run time (a benchmark's
# no-op encoder, a test's); their kind needs a row in vk.model_kinds too.
EXTRA_LOADERS: dict[str, Loader] = {}


def resolve(path: str) -> Any:
    """The object at "package.module:name"."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def loader(kind_name: str) -> Loader:
    if kind_name in EXTRA_LOADERS:
        return EXTRA_LOADERS[kind_name]
    kind = kinds.BY_NAME.get(kind_name)
    if kind is None or kind.loader is None:
        encoders = [*kinds.names(role="encoder"), *EXTRA_LOADERS]
        raise EncoderError(f"model kind {kind_name!r} cannot encode here (encoder kinds: {', '.join(encoders)})")
    return resolve(kind.loader)  # type: ignore[no-any-return]


def trainer(kind_name: str) -> Callable[..., Any]:
    kind = kinds.kind(kind_name)
    if kind.trainer is None:
        raise ValueError(f"cannot train a model of kind {kind_name!r} here")
    return resolve(kind.trainer)  # type: ignore[no-any-return]


def stores_artifact(kind_name: str) -> bool:
    """Whether versions of the kind load from an artifact in vk.model_artifacts (trained here)."""
    kind = kinds.BY_NAME.get(kind_name)
    return kind is not None and kind.trainable


def is_encoder(kind_name: str) -> bool:
    """Whether versions of the kind encode text here (registry encoders, and the extra loaders)."""
    kind = kinds.BY_NAME.get(kind_name)
    return kind_name in EXTRA_LOADERS or (kind is not None and kind.role == "encoder" and kind.loader is not None)
