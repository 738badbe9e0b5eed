"""What a trainer is given: one typed record of a train job, the same for every kind.

A train job's params in vk.jobs are {"model", "kind", "params"}, the kind's
parameters checked and completed by vk.train (vk._train_params); TrainSpec
reads them, taking out the ones that belong to the job rather than to the
model (holdout, activate, keep, and the version it learns from).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from vectorkeep.db import kinds
from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.progress import Report
from vectorkeep.workers.trainers.data import CollectionTexts

# The parameter naming the version a kind learns from, by kind.
REFERENCES = ("teacher", "encoder", "source")
JOB_PARAMS = ("holdout", "activate", "keep", *REFERENCES)


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


@dataclass(frozen=True)
class TrainingRun:
    """A trainer's inputs: the collection, the checked params, the version it learns from, and progress."""

    url: str
    conn: psycopg.Connection
    collection_id: int
    spec: TrainSpec
    # The teacher, encoder or source version (named, else the collection's search model); None when neither.
    reference: ModelVersion | None
    report: Report

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.params

    def texts(self, part: str = "train") -> CollectionTexts:
        return CollectionTexts(self.url, self.collection_id, part, self.spec.holdout)  # type: ignore[arg-type]

    def require_reference(self, what: str) -> ModelVersion:
        if self.reference is None:
            raise ValueError(f"a {self.spec.kind.name} model learns from {what}: the collection has no search model")
        return self.reference


Trainer = Callable[[TrainingRun], Any]
