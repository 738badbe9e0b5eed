"""Any Hugging Face encoder (a name or a local path): mean of the last hidden states over
the attention mask, L2-normalised. For models with no sentence-transformers config,
e.g. a CamemBERT for French text."""

from typing import Any

import numpy as np

from vectorkeep.workers import device as devices
from vectorkeep.workers.encoders.base import EncoderError, tokenizer_spans
from vectorkeep.workers.families.text.sentence_transformers import resolve_source


class MeanPoolEncoder:
    def __init__(self, params: dict[str, Any]) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        source = params.get("source")
        if not source:
            raise EncoderError("an hf-mean-pool model needs params.source (a hub name or a path)")
        path = resolve_source(str(source))
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path)
            self._model = AutoModel.from_pretrained(path)
        except Exception as exc:  # OSError, HTTP errors, ValueError, ...
            raise EncoderError(f"cannot load Hugging Face model {source!r}: {exc}") from exc
        self.device = devices.pick_device(params.get("device"))
        self._model.to(self.device, dtype=devices.encoder_dtype(self.device))
        self._model.eval()
        self._torch = torch
        self._max_length = int(params.get("max_length", 256))
        self._batch_size = int(
            params.get("batch_size") or devices.encode_batch_size(self.device, cpu=8, accelerator=128)
        )
        self._dim = int(self._model.config.hidden_size)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def window(self) -> int:
        return self._max_length - 2

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return tokenizer_spans(self._tokenizer, text)

    def truncated(self, texts: list[str]) -> list[bool]:
        ids = self._tokenizer(texts, truncation=True, max_length=self._max_length + 1)["input_ids"]
        return [len(i) > self._max_length for i in ids]

    def encode(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), self._batch_size):
                batch = self._tokenizer(
                    texts[i : i + self._batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self._max_length,
                    return_tensors="pt",
                ).to(self.device)
                # Pooled in float32 whatever the weights' precision: vectors are stored as float32.
                hidden = self._model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=1).cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self._dim), np.float32)


def load(params: dict[str, Any], artifact: bytes | None) -> MeanPoolEncoder:
    return MeanPoolEncoder(params)
