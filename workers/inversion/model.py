"""A vec2text InversionModel tied to one of the project's encoders.

vec2text loads its embedder by name; here the embedder is only used for its
dimension (vectors come from the database as frozen embeddings), and it is
the encoder's own local model, so nothing is downloaded. The decoder is a T5:
a pretrained one when params.t5 names it, else a small one created here from a
config (no weights to fetch), with the encoder's own tokenizer. Artifacts are
the inverter's weights (the embedder's excluded) in an .npz and its configs in
params, so any worker rebuilds the same model: config, then load_state_dict
(InversionModel.from_pretrained does not work with transformers 5).
"""

import logging
import tempfile
from typing import Any

import numpy as np
import torch

from vectorkeep.workers.arrays import pack, unpack
from vectorkeep.workers.encoders.sentence_transformers import resolve_source

log = logging.getLogger(__name__)

TINY_T5 = {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4}
EMBEDDER_PREFIX = "embedder."


def _quiet() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    # Importing vec2text turns torch's dynamo logs up to INFO (vec2text/experiments.py).
    torch._logging.set_logs(dynamo=logging.WARNING)


def build(encoder_source: str, params: dict[str, Any]) -> Any:
    """A fresh (untrained) inverter for the encoder, as params describe it."""
    import transformers
    from vec2text.models import InversionModel
    from vec2text.models.config import InversionConfig

    _quiet()
    encoder_path = resolve_source(encoder_source)
    tokenizer = transformers.AutoTokenizer.from_pretrained(encoder_path)
    with tempfile.TemporaryDirectory() as t5_dir:
        t5_name = params.get("t5")
        if t5_name:
            decoder_path = str(t5_name)
        else:
            torch.manual_seed(int(params.get("seed", 42)))
            config = transformers.T5Config(  # type: ignore[call-arg]
                vocab_size=tokenizer.vocab_size,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.sep_token_id,
                decoder_start_token_id=tokenizer.pad_token_id,
                **{**TINY_T5, **params.get("t5_config", {})},
            )
            transformers.T5ForConditionalGeneration(config).save_pretrained(t5_dir)
            tokenizer.save_pretrained(t5_dir)
            decoder_path = t5_dir
        config = InversionConfig(
            model_name_or_path=decoder_path,
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


def from_artifact(encoder_source: str, params: dict[str, Any], artifact: bytes) -> Any:
    model = build(encoder_source, params)
    state = {k: torch.from_numpy(v) for k, v in unpack(artifact).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(EMBEDDER_PREFIX) for k in missing):
        raise ValueError(f"inverter artifact does not fit its config (missing {missing[:3]}, extra {unexpected[:3]})")
    model.eval()
    return model


def loss(model: Any, texts: list[str], vectors: np.ndarray) -> Any:
    labels = model.tokenizer(
        texts, return_tensors="pt", padding=True, truncation=True, max_length=model.config.max_seq_length
    ).input_ids
    labels[labels == model.tokenizer.pad_token_id] = -100
    out = model(
        embedder_input_ids=None,
        embedder_attention_mask=None,
        frozen_embeddings=torch.from_numpy(np.asarray(vectors, dtype=np.float32)),
        labels=labels,
    )
    return out.loss


def generate(model: Any, vectors: np.ndarray, *, beam_width: int = 4, max_tokens: int = 32) -> list[list[str]]:
    """beam_width candidate texts for each vector, best first by the decoder's score."""
    with torch.no_grad():
        ids = model.generate(
            inputs={"frozen_embeddings": torch.from_numpy(np.asarray(vectors, dtype=np.float32))},
            generation_kwargs={
                "max_new_tokens": max_tokens,
                "num_beams": beam_width,
                "num_return_sequences": beam_width,
                "do_sample": False,
                "early_stopping": False,
            },
        )
    texts = model.tokenizer.batch_decode(ids, skip_special_tokens=True)
    return [texts[i * beam_width : (i + 1) * beam_width] for i in range(len(vectors))]
