"""Training data streamed from the database, one pass at a time.

Each pass opens a server-side cursor, so the Python side holds one batch of
rows at a time however large the collection. Rows are split into training and
held-out parts by a stable hash of their key: the same rows are held out on
every pass, every run and every machine.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Literal, TypeVar

import numpy as np

from vectorkeep.db.connect import connect
from vectorkeep.db.registry import as_array
from vectorkeep.sql import query
from vectorkeep.workers.encoders.text import stable_hash

Part = Literal["train", "heldout", "all"]
T = TypeVar("T")


def is_heldout(pk: str, fraction: float) -> bool:
    return stable_hash(pk) % 10_000 < fraction * 10_000


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


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

    def __iter__(self) -> Iterator[tuple[str, str, np.ndarray]]:
        texts = CollectionTexts(self.url, self.collection_id, self.part, self.holdout)
        with connect(self.url) as conn, conn.cursor(name="vk_training_pairs") as cur:
            cur.itersize = self.fetch
            cur.execute(query("collection_pairs"), {"collection_id": self.collection_id, "model_id": self.model_id})
            for pk, body, embedding in cur:
                if texts._keep(pk):
                    yield pk, body, as_array(embedding)


def sample(items: Iterable[T], limit: int) -> list[T]:
    """The first `limit` items (the stream is in key order, which hashing made arbitrary enough)."""
    return list(islice(items, limit))
