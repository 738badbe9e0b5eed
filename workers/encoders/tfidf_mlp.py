"""TF-IDF features through a small torch MLP, trained here to embed like a teacher model."""

from typing import Any

import numpy as np
import torch
from torch import nn

from vectorkeep.workers.arrays import l2_normalize, unpack
from vectorkeep.workers.encoders.base import require_artifact
from vectorkeep.workers.encoders.tfidf import TfidfFeatures


def build_mlp(n_features: int, hidden: list[int], dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, dim))
    return nn.Sequential(*layers)


def mlp_arrays(mlp: nn.Sequential) -> dict[str, np.ndarray]:
    return {f"mlp.{k}": v.detach().cpu().numpy() for k, v in mlp.state_dict().items()}


class TfidfMlpEncoder:
    def __init__(self, params: dict[str, Any], artifact: bytes) -> None:
        arrays = unpack(artifact)
        self.features = TfidfFeatures.from_arrays(arrays)
        hidden = [int(h) for h in params.get("hidden", [256, 128])]
        self._dim = int(params["dim"])
        self.mlp = build_mlp(len(self.features.vocabulary), hidden, self._dim)
        state = {k[len("mlp.") :]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("mlp.")}
        self.mlp.load_state_dict(state)
        self.mlp.eval()

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: list[str]) -> np.ndarray:
        with torch.no_grad():
            out = self.mlp(torch.from_numpy(self.features.transform(texts))).numpy()
        return l2_normalize(out.astype(np.float32))


def load(params: dict[str, Any], artifact: bytes | None) -> TfidfMlpEncoder:
    return TfidfMlpEncoder(params, require_artifact(artifact))
