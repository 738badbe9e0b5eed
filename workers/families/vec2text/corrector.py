"""A vec2text corrector: given a target vector and a hypothesis (a text and its vector), a better text.

vec2text's second model (CorrectorEncoderModel) reads the target embedding,
the hypothesis' embedding, their difference and the hypothesis' tokens, and
decodes a new text; repeated, it walks the inverter's first guess toward the
target (Morris et al. 2023, "Text Embeddings Reveal (Almost) As Much As Text").
Here it is built like the inverter (workers.families.vec2text.model): a T5 named by
params.t5 or a tiny one from a config, with the encoder's tokenizer; vec2text
sizes its input layers for 768-d vectors, so they are rebuilt for the
encoder's dimension.

A corrector cannot invert alone: it starts from its inverter's hypothesis.
Its artifact therefore carries the artifact of the inverter it was trained
with, so a corrector version inverts by itself wherever it is loaded (the
workers load inverter kinds from their own artifact only, and the pairing
cannot drift if the inverter is retired): load_inverter is the kind's loader,
and from_artifact reads the corrector's part only (for an inverter loaded
apart, workers.families.vec2text.inverter.load_corrector). Hypotheses are
re-tokenised from their text, so the corrector sees the same tokens whether
the hypothesis came from the inverter or from itself.
"""

import io
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.arrays import l2_normalize, pack
from vectorkeep.workers.device import autocast, device_of, pick_device
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.families.text.sentence_transformers import resolve_source
from vectorkeep.workers.families.vec2text import model as inverter_model
from vectorkeep.workers.inverter import Inversion

# The artifact's entry holding the inverter's own artifact (its bytes as uint8).
INVERTER_ENTRY = "__inverter_artifact__"
TRANSFORMS = ("embedding_transform_1", "embedding_transform_2", "embedding_transform_3")


@dataclass
class Corrector:
    """A CorrectorEncoderModel with the tokenizer of its T5 and the length of the texts it writes."""

    model: Any
    tokenizer: Any
    max_length: int

    @property
    def dim(self) -> int:
        return int(self.model.embedder_dim)

    def to(self, device: str | torch.device) -> "Corrector":
        self.model.to(device)
        return self

    def _tokens(self, texts: list[str]) -> Any:
        return self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length).to(
            device_of(self.model)
        )

    def _inputs(self, targets: np.ndarray, hypotheses: list[str], hypothesis_vectors: np.ndarray) -> dict[str, Any]:
        device = device_of(self.model)
        tokens = self._tokens(hypotheses)
        # Unit vectors on both sides: the stored vectors and the encoder's may differ in length (not all
        # encoders normalise), and the corrector reads their difference.
        return {
            "embedding": torch.from_numpy(l2_normalize(np.asarray(targets, dtype=np.float32))).to(device),
            "hypothesis_embedding": torch.from_numpy(l2_normalize(np.asarray(hypothesis_vectors, np.float32))).to(
                device
            ),
            "hypothesis_input_ids": tokens.input_ids,
            "hypothesis_attention_mask": tokens.attention_mask,
        }

    def loss(self, texts: list[str], targets: np.ndarray, hypotheses: list[str], hypothesis_vectors: np.ndarray) -> Any:
        """The loss of writing each real text from its target and the inverter's hypothesis (the caller runs
        it under autocast on a GPU)."""
        labels = self._tokens(texts).input_ids
        labels[labels == self.tokenizer.pad_token_id] = -100
        return self.model(**self._inputs(targets, hypotheses, hypothesis_vectors), labels=labels).loss

    def propose(
        self, targets: np.ndarray, hypotheses: list[str], hypothesis_vectors: np.ndarray, *, beam_width: int = 4
    ) -> list[list[str]]:
        """beam_width corrected texts for each (target, hypothesis), best first by the decoder's score."""
        inputs = self._inputs(targets, hypotheses, hypothesis_vectors)
        settings: dict[str, Any] = {"max_new_tokens": self.max_length, "num_beams": beam_width, "do_sample": False}
        if beam_width > 1:
            settings.update(num_return_sequences=beam_width, early_stopping=False)
        with torch.no_grad(), autocast(device_of(self.model)):
            embeds, mask = self.model.get_encoder_embedding(
                embedding=inputs["embedding"],
                hypothesis_embedding=inputs["hypothesis_embedding"],
                hypothesis_input_ids=inputs["hypothesis_input_ids"],
                hypothesis_attention_mask=inputs["hypothesis_attention_mask"],
            )
            ids = self.model.encoder_decoder.generate(inputs_embeds=embeds, attention_mask=mask, **settings)
        texts = self.tokenizer.batch_decode(ids.cpu(), skip_special_tokens=True)
        return [texts[i * beam_width : (i + 1) * beam_width] for i in range(len(hypotheses))]

    def invert(
        self,
        inverter: Any,
        encoder: Encoder,
        target: np.ndarray,
        *,
        steps: int = 4,
        beam_width: int = 4,
        max_seconds: float = 10.0,
    ) -> Inversion:
        """The inverter's best guess, then up to `steps` corrections of the latest hypothesis (vec2text's
        recursion); every candidate is re-embedded and the closest text seen is kept, with its cosine.
        The time box is checked before each correction; the first guess always runs."""
        start = time.monotonic()
        goal = l2_normalize(np.asarray(target, dtype=np.float32))
        candidates = inverter_model.generate(inverter, goal[None, :], beam_width=beam_width)[0]
        text, vector, cosine = _closest(encoder, candidates, goal)
        best_text, best_cosine = text, cosine
        steps_run, timed_out = 0, False
        for step in range(1, steps + 1):
            if time.monotonic() - start > max_seconds:
                timed_out = True
                break
            candidates = self.propose(goal[None, :], [text], vector[None, :], beam_width=beam_width)[0]
            previous = text
            text, vector, cosine = _closest(encoder, candidates, goal)
            steps_run = step
            if cosine > best_cosine:
                best_text, best_cosine = text, cosine
            if text == previous:  # a fixed point: the next step would write the same text again
                break
        return Inversion(best_text, best_cosine, steps_run, timed_out)


def _closest(encoder: Encoder, candidates: list[str], goal: np.ndarray) -> tuple[str, np.ndarray, float]:
    """The candidate whose vector is closest to the goal (cosine), its unit vector and that cosine."""
    vectors = l2_normalize(encoder.encode(candidates))
    cosines = vectors @ goal
    i = int(np.argmax(cosines))
    return candidates[i], vectors[i], float(cosines[i])


def hypotheses(inverter: Any, encoder: Encoder, targets: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The inverter's greedy first guess for each target, and its vector (what a corrector learns to fix)."""
    texts = [c[0] for c in inverter_model.generate(inverter, l2_normalize(targets), beam_width=1)]
    return texts, l2_normalize(encoder.encode(texts))


def build(encoder_source: str, params: dict[str, Any], dim: int) -> Corrector:
    """A fresh (untrained) corrector for dim-d vectors of the encoder, as params describe it, on the CPU."""
    import transformers
    from vec2text.models import CorrectorEncoderModel
    from vec2text.models.config import InversionConfig

    inverter_model._quiet()
    with tempfile.TemporaryDirectory() as t5_dir:
        path = inverter_model.decoder_path(resolve_source(encoder_source), params, t5_dir)
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        config = InversionConfig(
            model_name_or_path=path,
            embedder_model_api=None,
            num_repeat_tokens=int(params.get("num_repeat_tokens", 4)),
            max_seq_length=int(params.get("max_length", 32)),
            corrector_ignore_hypothesis_embedding=False,
        )
        model = CorrectorEncoderModel(config)
    _fit_dimension(model, dim)
    return Corrector(model, tokenizer, int(params.get("max_length", 32)))


def _fit_dimension(model: Any, dim: int) -> None:
    """vec2text's input layers read 768-d vectors; rebuild them (same shape otherwise) for dim."""
    if model.embedder_dim == dim:
        return
    hidden = model.encoder_hidden_dim * model.num_repeat_tokens
    for name in TRANSFORMS:
        setattr(
            model,
            name,
            torch.nn.Sequential(
                torch.nn.Linear(dim, dim), torch.nn.Dropout(0.0), torch.nn.GELU(), torch.nn.Linear(dim, hidden)
            ),
        )
    model.embedder_dim = dim


def to_artifact(corrector: Corrector, inverter_artifact: bytes) -> bytes:
    """The corrector's weights (CPU copies; tied ones once: T5's input embeddings and lm_head are one
    matrix, the largest) and, beside them, the artifact of the inverter it corrects."""
    state: dict[str, np.ndarray] = {}
    seen: set[tuple[int, tuple[int, ...]]] = set()
    for name, tensor in corrector.model.state_dict().items():
        key = (tensor.data_ptr(), tuple(tensor.shape))
        if key not in seen:
            seen.add(key)
            state[name] = tensor.detach().cpu().numpy()
    return pack({**state, INVERTER_ENTRY: np.frombuffer(inverter_artifact, dtype=np.uint8)})


def inverter_artifact(artifact: bytes) -> bytes:
    """The artifact of the inverter a corrector artifact was made for."""
    with np.load(io.BytesIO(artifact), allow_pickle=False) as npz:
        return npz[INVERTER_ENTRY].tobytes()


def load_state(corrector: Corrector, state: dict[str, torch.Tensor], what: str) -> None:
    """Load weights into a built corrector; tied aliases (T5's embeddings and lm_head) may be saved once."""
    missing, unexpected = corrector.model.load_state_dict(state, strict=False)
    loaded = {id(p) for name, p in corrector.model.named_parameters(remove_duplicate=False) if name in state}
    aliases = {name for name, p in corrector.model.named_parameters(remove_duplicate=False) if id(p) in loaded}
    missing = [k for k in missing if k not in aliases]
    if unexpected or missing:
        raise ValueError(f"{what} does not fit its config (missing {missing[:3]}, extra {unexpected[:3]})")
    corrector.model.eval()


def from_artifact(
    encoder_source: str, params: dict[str, Any], artifact: bytes, dim: int, device: str | None = "auto"
) -> Corrector:
    """The stored corrector (its inverter's bytes left unread), ready on the device (auto: an accelerator)."""
    corrector = build(encoder_source, params, dim)
    with np.load(io.BytesIO(artifact), allow_pickle=False) as npz:
        state = {k: torch.from_numpy(npz[k]) for k in npz.files if k != INVERTER_ENTRY}
    load_state(corrector, state, "corrector artifact")
    return corrector.to(pick_device(device))


def load_inverter(version: ModelVersion, artifact: bytes, encoder: Encoder, options: dict[str, Any]) -> Any:
    """A vec2text-corrector version as an inverter on its own (its kind's loader): the inverter it was trained
    with (carried in its artifact) makes the first guess, the corrector the next ones (options.steps, else
    params.steps); a workers.families.vec2text.inverter.Vec2Text."""
    from vectorkeep.workers.families.vec2text.inverter import Vec2Text, load_corrector

    p, device = version.params, options.get("device")
    model = inverter_model.from_artifact(p["encoder_source"], p["inverter_params"], inverter_artifact(artifact), device)
    return Vec2Text(
        version,
        encoder,
        model,
        steps=int(options.get("steps", p.get("steps", 4))),
        beam_width=int(options.get("beam_width", 4)),
        corrector=load_corrector(version, artifact, encoder, device),
    )
