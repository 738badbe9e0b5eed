"""What a trainer is given and hands back: one typed record of a train job, the same for every kind.

A train job's params in vk.jobs are {"model", "kind", "params"}, the kind's
parameters checked and completed by vk.train (vk._train_params); TrainSpec
reads them, taking out the ones that belong to the job rather than to the
model (holdout, activate, keep, and the version it learns from).

Trainers (in vectorkeep.workers.families) never touch the database: the train
job (vectorkeep.workers.jobs.train) resolves the versions they learn from and
hands them what they read as TrainingInputs (vectorkeep.workers.jobs.training_inputs
reads it from the database). Rows are split into training and held-out parts
by a stable hash of their key: the same rows are held out on every pass, every
run and every machine.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal, Protocol, TypeVar

import numpy as np

from vectorkeep.db import kinds
from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.encoders.text import stable_hash
from vectorkeep.workers.progress import Report

Part = Literal["train", "heldout", "all"]
# (pk, text, vector): a row's text and the vector a model made from it.
Pair = tuple[str, str, np.ndarray]
# (group, the context's vectors, the next vector): one window of an ordered group.
Window = tuple[str, list[np.ndarray], np.ndarray]
T = TypeVar("T")

# The parameter naming the version a kind learns from, by kind.
REFERENCES = ("teacher", "encoder", "source")
JOB_PARAMS = ("holdout", "activate", "keep", *REFERENCES)


def is_heldout(pk: str, fraction: float) -> bool:
    return stable_hash(pk) % 10_000 < fraction * 10_000


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def sample(items: Iterable[T], limit: int) -> list[T]:
    """The first `limit` items (the stream is in key order, which hashing made arbitrary enough)."""
    return list(islice(items, limit))


@dataclass(frozen=True)
class TrainSpec:
    model: str
    kind: kinds.Kind
    # The model's own parameters, every default filled in.
    params: dict[str, Any]
    holdout: float = 0.1
    gates: dict[str, Any] | None = None
    keep: int | None = None
    reference: str | None = None

    @classmethod
    def from_job(cls, job_params: Mapping[str, Any]) -> "TrainSpec":
        kind = kinds.kind(str(job_params["kind"]))
        # A job queued before 0012 recorded only the parameters given.
        given = kind.with_defaults(dict(job_params.get("params") or {}))
        own = {k: v for k, v in given.items() if k not in JOB_PARAMS}
        reference = next((given[k] for k in REFERENCES if given.get(k)), None)
        keep = given.get("keep")
        return cls(
            model=str(job_params["model"]),
            kind=kind,
            params=own,
            holdout=float(given.get("holdout", 0.1)),
            gates=given.get("activate"),
            keep=None if keep is None else int(keep),
            reference=None if reference is None else str(reference),
        )


class TrainingInputs(Protocol):
    """What a trainer reads, supplied by the train job. Texts and pairs are re-iterable, one pass each
    iteration, in key order, split into parts by is_heldout with the job's holdout."""

    def texts(self, part: Part) -> Iterable[tuple[str, str]]:
        """(pk, text) of the collection's rows with text."""
        ...

    def pairs(self, model: ModelVersion, part: Part) -> Iterable[Pair]:
        """(pk, text, vector) of the collection under a model: the text each vector was made from."""
        ...

    def vectors(self, model: ModelVersion) -> list[np.ndarray]:
        """Every stored vector of the collection under a model, in key order."""
        ...

    def windows(self, model: ModelVersion, context: int) -> list[Window]:
        """The collection's ordered groups as windows of `context` vectors of a model and the next one."""
        ...

    def version(self, model_id: int) -> ModelVersion:
        """A version a trainer's inputs name by id (a corrector's inverter names its encoder)."""
        ...

    def artifact(self, model: ModelVersion) -> bytes:
        """A version's artifact, checked by sha256."""
        ...

    def encoder(self, model: ModelVersion) -> Encoder:
        """A version's encoder, loaded and checked against its fingerprint."""
        ...


@dataclass(frozen=True)
class TrainingRun:
    """A trainer's inputs: the collection, the checked params, the versions it learns from, what it reads,
    and progress."""

    collection_id: int
    # The collection's name, as a version's metrics describe what it was trained on.
    collection: str
    spec: TrainSpec
    # The teacher, encoder or source version (named, else the collection's search model); None when neither.
    reference: ModelVersion | None
    inputs: TrainingInputs
    report: Report
    # The kind's other `model` parameters, resolved by the train job (a corrector's inverter); a name is
    # missing when none was named and none ready was found.
    models: Mapping[str, ModelVersion] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.params

    def texts(self, part: Part = "train") -> Iterable[tuple[str, str]]:
        return self.inputs.texts(part)

    def pairs(self, model: ModelVersion, part: Part) -> Iterable[Pair]:
        return self.inputs.pairs(model, part)

    def require_reference(self, what: str) -> ModelVersion:
        if self.reference is None:
            raise ValueError(f"a {self.spec.kind.name} model learns from {what}: the collection has no search model")
        return self.reference


@dataclass
class Trained:
    """What a trainer hands back to the train job."""

    artifact: bytes
    dim: int
    # Recorded on the version: everything its encoder needs besides the artifact.
    params: dict[str, Any]
    # The kind's own figures (losses, vocabulary, explained variance...).
    metrics: dict[str, Any] = field(default_factory=dict)


def of_vectors(run: TrainingRun) -> tuple[ModelVersion, dict[str, Any]]:
    """A model of the collection's vectors rather than its text (a map, a next-vector model): its source
    version, and its params with the collection and source recorded (activate and gates both become the
    version's own gates, which vk.activate checks)."""
    source = run.require_reference("a model's vectors")
    gates = {**(run.params.get("gates") or {}), **(run.spec.gates or {})}
    params = {**run.params, **({"gates": gates} if gates else {})}
    return source, {**params, "collection_id": run.collection_id, "source_model_id": source.id, "source": source.label}


Trainer = Callable[[TrainingRun], Trained]
