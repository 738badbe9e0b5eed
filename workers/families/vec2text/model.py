"""A vec2text InversionModel tied to one of the project's encoders.

vec2text loads its embedder by name; here the embedder is only used for its
dimension (vectors come from the database as frozen embeddings), and it is
the encoder's own local model, so nothing is downloaded. The decoder is a T5:
a pretrained one when params.t5 names it, else a small one created here from a
config (no weights to fetch), with the encoder's own tokenizer. Artifacts are
the inverter's weights (the embedder's excluded) in an .npz and its configs in
params, so any worker rebuilds the same model: config, then load_state_dict
(InversionModel.from_pretrained does not work with transformers 5).

Devices: a model is built on the CPU; from_artifact moves it to the worker's
accelerator when there is one (workers.device), and loss and
generate send their tensors to wherever the model is, and bring results back
to the CPU. Artifacts are always saved from CPU copies, so a model trained on a
GPU loads on a CPU-only worker and the other way round.
"""

import logging
import tempfile
from typing import Any

import numpy as np
import torch

from vectorkeep.workers.arrays import pack, unpack
from vectorkeep.workers.device import autocast, device_of, pick_device
from vectorkeep.workers.families.text.sentence_transformers import resolve_source

log = logging.getLogger(__name__)

TINY_T5 = {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4}
EMBEDDER_PREFIX = "embedder."


def _quiet() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    # Importing vec2text turns torch's dynamo logs up to INFO (vec2text/experiments.py).
    torch._logging.set_logs(dynamo=logging.WARNING)


def decoder_path(encoder_path: str, params: dict[str, Any], folder: str) -> str:
    """Where a vec2text model loads its T5 from: params.t5 when given, else a tiny T5 created in folder
    from a config (seeded: the same params give the same weights), with the encoder's own tokenizer."""
    import transformers

    t5_name = params.get("t5")
    if t5_name:
        return str(t5_name)
    tokenizer = transformers.AutoTokenizer.from_pretrained(encoder_path)
    torch.manual_seed(int(params.get("seed", 42)))
    config = transformers.T5Config(  # type: ignore[call-arg]
        vocab_size=tokenizer.vocab_size,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        **{**TINY_T5, **(params.get("t5_config") or {})},
    )
    transformers.T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build(encoder_source: str, params: dict[str, Any]) -> Any:
    """A fresh (untrained) inverter for the encoder, as params describe it, on the CPU."""
    from vec2text.models import InversionModel
    from vec2text.models.config import InversionConfig

    _quiet()
    encoder_path = resolve_source(encoder_source)
    with tempfile.TemporaryDirectory() as t5_dir:
        config = InversionConfig(
            model_name_or_path=decoder_path(encoder_path, params, t5_dir),
            embedder_model_name=encoder_path,
            use_frozen_embeddings_as_input=True,
            num_repeat_tokens=int(params.get("num_repeat_tokens", 4)),
            max_seq_length=int(params.get("max_length", 32)),
            embedder_no_grad=True,
            embedder_model_api=None,
            embedder_fake_with_zeros=False,
            encoder_dropout_disabled=False,
            decoder_dropout_disabled=False,
            embeddings_from_layer_n=None,
            use_lora=False,
            embedder_torch_dtype="float32",
        )
        return InversionModel(config)


def to_artifact(model: Any) -> bytes:
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items() if not k.startswith(EMBEDDER_PREFIX)}
    return pack(state)


def from_artifact(encoder_source: str, params: dict[str, Any], artifact: bytes, device: str | None = "auto") -> Any:
    """The stored inverter, rebuilt and ready to generate on the device (auto: an accelerator when present)."""
    model = build(encoder_source, params)
    state = {k: torch.from_numpy(v) for k, v in unpack(artifact).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(EMBEDDER_PREFIX) for k in missing):
        raise ValueError(f"inverter artifact does not fit its config (missing {missing[:3]}, extra {unexpected[:3]})")
    model.eval()
    return model.to(pick_device(device))


def _vectors(model: Any, vectors: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(vectors, dtype=np.float32)).to(device_of(model))


def loss(model: Any, texts: list[str], vectors: np.ndarray) -> Any:
    """The decoder's loss on the texts given their vectors (the caller runs it under autocast, on a GPU)."""
    labels = model.tokenizer(
        texts, return_tensors="pt", padding=True, truncation=True, max_length=model.config.max_seq_length
    ).input_ids
    labels[labels == model.tokenizer.pad_token_id] = -100
    out = model(
        embedder_input_ids=None,
        embedder_attention_mask=None,
        frozen_embeddings=_vectors(model, vectors),
        labels=labels.to(device_of(model)),
    )
    return out.loss


def generate(model: Any, vectors: np.ndarray, *, beam_width: int = 4, max_tokens: int = 32) -> list[list[str]]:
    """beam_width candidate texts for each vector, best first by the decoder's score."""
    settings: dict[str, Any] = {"max_new_tokens": max_tokens, "num_beams": beam_width, "do_sample": False}
    if beam_width > 1:
        settings.update(num_return_sequences=beam_width, early_stopping=False)
    with torch.no_grad(), autocast(device_of(model)):
        ids = model.generate(inputs={"frozen_embeddings": _vectors(model, vectors)}, generation_kwargs=settings)
    texts = model.tokenizer.batch_decode(ids.cpu(), skip_special_tokens=True)
    return [texts[i * beam_width : (i + 1) * beam_width] for i in range(len(vectors))]
