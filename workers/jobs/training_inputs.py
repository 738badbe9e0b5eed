"""A train job's TrainingInputs (vectorkeep.workers.training): what its trainer reads, from the database.

Each pass over texts or pairs opens a server-side cursor, so the Python side
holds one batch of rows at a time however large the collection. Rows are
split into training and held-out parts by a stable hash of their key
(is_heldout).
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import psycopg

from vectorkeep.db import artifacts, registry
from vectorkeep.db.connect import connect
from vectorkeep.db.records import ModelVersion
from vectorkeep.db.registry import as_array
from vectorkeep.sql import query
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.training import Pair, Part, Window, is_heldout


@dataclass(frozen=True)
class CollectionTexts:
    """Re-iterable (pk, text) pairs of a collection's rows with text, in key order."""

    url: str
    collection_id: int
    part: Part = "all"
    holdout: float = 0.1
    fetch: int = 1000

    def _keep(self, pk: str) -> bool:
        return self.part == "all" or is_heldout(pk, self.holdout) == (self.part == "heldout")

    def __iter__(self) -> Iterator[tuple[str, str]]:
        with connect(self.url) as conn, conn.cursor(name="vk_training_texts") as cur:
            cur.itersize = self.fetch
            cur.execute(query("collection_texts"), {"collection_id": self.collection_id})
            for pk, body in cur:
                if self._keep(pk):
                    yield pk, body


@dataclass(frozen=True)
class CollectionPairs:
    """Re-iterable (pk, text, vector) of a collection under a model: the text each vector was made from."""

    url: str
    collection_id: int
    model_id: int
    part: Part = "all"
    holdout: float = 0.1
    fetch: int = 1000

    def __iter__(self) -> Iterator[Pair]:
        texts = CollectionTexts(self.url, self.collection_id, self.part, self.holdout)
        with connect(self.url) as conn, conn.cursor(name="vk_training_pairs") as cur:
            cur.itersize = self.fetch
            cur.execute(query("collection_pairs"), {"collection_id": self.collection_id, "model_id": self.model_id})
            for pk, body, embedding in cur:
                if texts._keep(pk):
                    yield pk, body, as_array(embedding)


@dataclass(frozen=True)
class CollectionInputs:
    """TrainingInputs of one collection: texts and pairs streamed on their own connections (url), the rest
    read on the job's connection (conn), in its transaction."""

    url: str
    conn: psycopg.Connection
    collection_id: int
    holdout: float

    def texts(self, part: Part) -> CollectionTexts:
        return CollectionTexts(self.url, self.collection_id, part, self.holdout)

    def pairs(self, model: ModelVersion, part: Part) -> CollectionPairs:
        return CollectionPairs(self.url, self.collection_id, model.id, part, self.holdout)

    def vectors(self, model: ModelVersion) -> list[np.ndarray]:
        rows = self.conn.execute(
            query("row_vectors"), {"collection_id": self.collection_id, "model_id": model.id, "pks": None}
        ).fetchall()
        return [as_array(v) for _, v, _ in rows]

    def windows(self, model: ModelVersion, context: int) -> list[Window]:
        rows = self.conn.execute(
            query("sequence_windows"),
            {"collection_id": self.collection_id, "model_id": model.id, "context": context},
        ).fetchall()
        return [(g, [as_array(v) for v in before], as_array(t)) for g, _, before, t in rows]

    def version(self, model_id: int) -> ModelVersion:
        return registry.by_id(self.conn, model_id)

    def artifact(self, model: ModelVersion) -> bytes:
        return artifacts.load(self.conn, model)

    def encoder(self, model: ModelVersion) -> Encoder:
        return EncoderCache().get(self.conn, model)
