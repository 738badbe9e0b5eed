"""TF-IDF features through a small torch MLP, trained here to embed like a teacher model."""

from typing import Any

import numpy as np
import torch
from torch import nn

from vectorkeep.workers import device as devices
from vectorkeep.workers.arrays import l2_normalize, unpack
from vectorkeep.workers.encoders.base import require_artifact
from vectorkeep.workers.families.tfidf.encoder import TfidfFeatures


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
        self.device = devices.pick_device(params.get("device"))
        self._dtype = devices.encoder_dtype(self.device) or torch.float32
        self.mlp.to(self.device, dtype=self._dtype)
        self.mlp.eval()
        self._batch_size = devices.encode_batch_size(self.device, cpu=1024, accelerator=4096)

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: list[str]) -> np.ndarray:
        out = [np.zeros((0, self._dim), np.float32)]
        with torch.no_grad():
            for i in range(0, len(texts), self._batch_size):
                features = torch.from_numpy(self.features.transform(texts[i : i + self._batch_size]))
                y = self.mlp(features.to(self.device, dtype=self._dtype))
                out.append(y.float().cpu().numpy())
        return l2_normalize(np.concatenate(out).astype(np.float32))


def load(params: dict[str, Any], artifact: bytes | None) -> TfidfMlpEncoder:
    return TfidfMlpEncoder(params, require_artifact(artifact))
