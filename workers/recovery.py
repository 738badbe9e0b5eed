"""The one way text is recovered from a vector, for adopted tables, map gaps and predictions alike.

For a target vector of an encoder version: the nearest stored texts (by
vk.recover over pgvector), then the best ready inverter for that encoder (the
one with the highest held-out cosine recorded when it was trained, newest
first among equals) starting from them. Each text is re-embedded by the
encoder and scored by its cosine to the target; the better one is the
answer, and every attempt is kept with its method, version and cosine. So a
method that does worse than the nearest stored text on a vector is never the
answer for that vector.
"""

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import psycopg

from vectorkeep.db import artifacts, registry
from vectorkeep.db.records import ModelVersion
from vectorkeep.sql import query
from vectorkeep.workers.arrays import l2_normalize
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders import Encoder
from vectorkeep.workers.inverter import Inverter, Neighbour, Penalty
from vectorkeep.workers.kinds import resolve

log = logging.getLogger(__name__)

NEAREST = "nearest"
DEFAULT_SECONDS = 10.0
TIE = 1e-4


def method_of(kind: str) -> str:
    """The recovery method of an inverter kind, as vk.recovered records it (vk._inverter_method)."""
    return kind.removesuffix("-inverter")


@dataclass(frozen=True)
class Attempt:
    method: str  # "nearest", or the inverter's method (method_of its kind)
    model: str  # the version: the encoder whose stored texts were searched, or the inverter
    model_id: int
    text: str
    cosine: float  # of the text, re-embedded, to the target
    seconds: float
    source_collection: str | None = None  # where a stored text came from
    source_pk: str | None = None
    steps: int | None = None  # an inverter's search steps, and whether its time box cut it short
    timed_out: bool | None = None


@dataclass(frozen=True)
class Recovered:
    best: Attempt
    tried: list[Attempt]

    def details(self) -> dict[str, Any]:
        return {"tried": [asdict(a) for a in self.tried]}


def load_inverter(
    conn: psycopg.Connection, version: ModelVersion, encoder: Encoder, options: dict[str, Any] | None = None
) -> Inverter:
    from vectorkeep.db import kinds

    path = kinds.kind(version.kind).inverter
    if path is None:
        raise ValueError(f"{version.label} ({version.kind}) is not an inverter")
    return resolve(path)(version, artifacts.load(conn, version), encoder, options or {})  # type: ignore[no-any-return]


def ranked_inverters(conn: psycopg.Connection, encoder: ModelVersion) -> list[ModelVersion]:
    """The ready inverters trained for an encoder version, best recorded held-out cosine first."""
    return [registry.by_id(conn, row[0]) for row in conn.execute(query("inverters_for"), {"model_id": encoder.id})]


class Recovery:
    """Recover texts for vectors of one encoder version, with an inverter or by nearest stored text only."""

    def __init__(
        self,
        conn: psycopg.Connection,
        encoder_version: ModelVersion,
        encoder: Encoder,
        inverter: Inverter | None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.conn, self.encoder_version, self.encoder, self.inverter = conn, encoder_version, encoder, inverter
        self.options = dict(options or {})
        self.neighbour_count = int(
            self.options.get("neighbours") or (inverter.version.params.get("neighbours", 40) if inverter else 1)
        )

    def seconds(self) -> float:
        if self.options.get("max_seconds") is not None:
            return float(self.options["max_seconds"])
        if self.inverter is not None:
            return float(self.inverter.version.params.get("seconds", DEFAULT_SECONDS))
        return DEFAULT_SECONDS

    def neighbours(
        self,
        target: np.ndarray,
        *,
        collection: str | None = None,
        exclude_pk: str | None = None,
        exclude_text: str | None = None,
    ) -> list[tuple[str, str, Neighbour]]:
        """(collection, pk, neighbour) of the nearest stored texts, the row and text left out named."""
        rows = self.conn.execute(
            query("recover_nearest"),
            {
                "query": target,
                "model": self.encoder_version.label,
                "k": self.neighbour_count + 2,
                "collection": collection,
            },
        ).fetchall()
        kept = [
            (c, pk, Neighbour(body, float(sim)))
            for c, pk, body, sim in rows
            if body
            and not (exclude_pk is not None and pk == exclude_pk and (collection is None or c == collection))
            and body != exclude_text
        ]
        return kept[: self.neighbour_count]

    def recover(
        self,
        target: np.ndarray,
        *,
        collection: str | None = None,
        exclude_pk: str | None = None,
        exclude_text: str | None = None,
        penalty: Penalty | None = None,
    ) -> Recovered:
        """penalty: an objection to texts' vectors beside their cosine (a map gap: landing outside its cell),
        which the inverter searches with and the choice between the texts counts."""
        goal = l2_normalize(np.asarray(target, dtype=np.float32))
        started = time.monotonic()
        found = self.neighbours(goal, collection=collection, exclude_pk=exclude_pk, exclude_text=exclude_text)
        tried: list[Attempt] = []
        if found:
            source_collection, source_pk, nearest = found[0]
            cosine = float(l2_normalize(self.encoder.encode([nearest.text]))[0] @ goal)
            tried.append(
                Attempt(
                    NEAREST,
                    self.encoder_version.label,
                    self.encoder_version.id,
                    nearest.text,
                    cosine,
                    round(time.monotonic() - started, 3),
                    source_collection,
                    source_pk,
                )
            )
        if self.inverter is not None:
            started = time.monotonic()
            result = self.inverter.invert(goal, [n for _, _, n in found], self.seconds(), penalty)
            version = self.inverter.version
            tried.append(
                Attempt(
                    method_of(version.kind),
                    version.label,
                    version.id,
                    result.text,
                    result.cosine,
                    round(time.monotonic() - started, 3),
                    steps=result.steps_run,
                    timed_out=result.timed_out,
                )
            )
        if not tried:
            raise ValueError(f"no stored text of {self.encoder_version.label} to recover from, and no inverter")
        judged = np.array([a.cosine for a in tried])
        if penalty is not None:
            judged = judged - penalty(l2_normalize(self.encoder.encode([a.text for a in tried])))
        best = 0
        for i in range(1, len(tried)):
            # A generated text must beat a real one by more than float noise (1e-4 in cosine).
            if judged[i] > judged[best] + (TIE if tried[best].method == NEAREST else 0.0):
                best = i
        return Recovered(tried[best], tried)


def recovery_for(
    conn: psycopg.Connection,
    encoder_version: ModelVersion,
    *,
    inverter: ModelVersion | None = None,
    use_inverter: bool = True,
    encoders: EncoderCache | None = None,
    options: dict[str, Any] | None = None,
) -> Recovery:
    """Recovery for an encoder's vectors: with the inverter named, else the best ready one for the encoder
    (use_inverter=False: the nearest stored text only)."""
    encoder = (encoders or EncoderCache()).get(conn, encoder_version)
    if use_inverter and inverter is None:
        ranked = ranked_inverters(conn, encoder_version)
        inverter = ranked[0] if ranked else None
    loaded = load_inverter(conn, inverter, encoder, options) if use_inverter and inverter is not None else None
    return Recovery(conn, encoder_version, encoder, loaded, options)
