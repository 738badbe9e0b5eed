"""A pretrained vec2text inverter or corrector (a local directory or a hub name), tied to an encoder version.

vec2text saves an InversionModel as a config (its T5, its embedder's name)
and weights. Loading it the way vec2text does would fetch the embedder by
name and fails with transformers 5 (from_pretrained); here the model is built
from that config with the project's own encoder, then the weights are loaded
into it (the embedder's left out: vectors come from the database). A
corrector (CorrectorEncoderModel) is saved the same way, with no embedder; its
input layers' width gives the dimension of the vectors it reads.
"""

from pathlib import Path
from typing import Any

import torch

from vectorkeep.workers.families.vec2text import corrector
from vectorkeep.workers.families.vec2text.model import EMBEDDER_PREFIX, build

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _weights(source: str) -> dict[str, torch.Tensor]:
    folder = Path(source)
    if folder.is_dir():
        files = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
        if not files:
            raise FileNotFoundError(f"{source} holds no {' or '.join(WEIGHT_FILES)}")
        path = files[0]
    else:
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(source, WEIGHT_FILES[0]))
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]


def _params(source: str, t5: str | None) -> dict[str, Any]:
    """What rebuilds a saved vec2text model (inverter or corrector) from its config."""
    from vec2text.models.config import InversionConfig

    config = InversionConfig.from_pretrained(source)
    return {
        "t5": t5 or config.model_name_or_path,
        "num_repeat_tokens": int(config.num_repeat_tokens),
        "max_length": int(config.max_seq_length),
        "pretrained": source,
    }


def _check_input(state: dict[str, torch.Tensor], layer: str, source: str, what: str, encoder_dim: int) -> None:
    """The saved model's first layer over vectors exists and takes the encoder's dimension."""
    expected = state.get(f"{layer}.0.weight")
    if expected is None:
        raise ValueError(f"{source} is not a vec2text {what} (no {layer} weights)")
    if expected.shape[1] != encoder_dim:
        raise ValueError(f"{source} reads {expected.shape[1]}-d vectors; the encoder makes {encoder_dim}-d vectors")


def load(source: str, encoder_source: str, encoder_dim: int, t5: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The inverter saved at source, rebuilt for the encoder; and the params that rebuild it again."""
    params = _params(source, t5)
    state = {k: v for k, v in _weights(source).items() if not k.startswith(EMBEDDER_PREFIX)}
    _check_input(state, "embedding_transform", source, "InversionModel", encoder_dim)
    model = build(encoder_source, params)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Tied weights (T5's embeddings and lm_head) are saved once; their aliases are not missing.
    loaded = {id(p) for name, p in model.named_parameters(remove_duplicate=False) if name in state}
    aliases = {name for name, p in model.named_parameters(remove_duplicate=False) if id(p) in loaded}
    missing = [k for k in missing if k not in aliases and not k.startswith(EMBEDDER_PREFIX)]
    if unexpected or missing:
        raise ValueError(f"{source} does not fit its own config (missing {missing[:3]}, extra {unexpected[:3]})")
    model.eval()
    return model, params


def load_corrector(
    source: str, encoder_source: str, encoder_dim: int, t5: str | None = None
) -> tuple[corrector.Corrector, dict[str, Any]]:
    """The corrector saved at source, rebuilt for the encoder's vectors; and the params that rebuild it again."""
    params = _params(source, t5)
    state = _weights(source)
    _check_input(state, "embedding_transform_1", source, "CorrectorEncoderModel", encoder_dim)
    model = corrector.build(encoder_source, params, encoder_dim)
    corrector.load_state(model, state, source)
    return model, params
