"""Encoders loaded once per worker process, each proven against its fingerprint."""

import json
import logging

import numpy as np
import psycopg

from vectorkeep.db import artifacts, registry
from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.encoders import Encoder, load_encoder
from vectorkeep.workers.encoders.registry import check_fingerprint
from vectorkeep.workers.kinds import stores_artifact

log = logging.getLogger(__name__)


def _key(model: ModelVersion) -> tuple[object, ...]:
    # Not the id alone: one process may serve several databases (ids repeat),
    # and a version's params (its artifact hash) identify what to load.
    return (model.id, model.label, model.kind, json.dumps(model.params, sort_keys=True))


class EncoderCache:
    def __init__(self, *, patience: float | None = None) -> None:
        """patience: the longest an encoder behind an API may wait for its per-minute budget inside a
        batch (its max_wait at most); the text-query lane gives 0, so that a saturated provider defers
        its rows there rather than hold the application's other rows of the batch."""
        self._encoders: dict[tuple[object, ...], tuple[Encoder, np.ndarray]] = {}
        self.patience = patience

    def loaded(self, model: ModelVersion) -> bool:
        """Whether this version's encoder is loaded in this process (get() then touches no table)."""
        return _key(model) in self._encoders

    def get(self, conn: psycopg.Connection, model: ModelVersion) -> Encoder:
        """The encoder of a model version, loaded and fingerprint-checked on first use.

        The first worker ever to load a version records its fingerprint (in
        the caller's transaction); every later load is compared with it.
        """
        cached = self._encoders.get(_key(model))
        if cached is not None:
            encoder, probe = cached
        else:
            artifact = artifacts.load(conn, model) if stores_artifact(model.kind) else None
            encoder = load_encoder(model, artifact)
            if self.patience is not None and hasattr(encoder, "max_wait"):
                encoder.max_wait = min(encoder.max_wait, self.patience)
            probe_text = registry.probe_text(conn)
            probe = encoder.encode([probe_text])[0]
        # Checked on every use, cached or not: the recorded fingerprint may have changed since, or (a cache
        # that served another database of the same versions) be missing here.
        if model.fingerprint is None:
            registry.record_fingerprint(conn, model.id, probe)
            model = registry.by_id(conn, model.id)
            log.info("recorded the fingerprint of %s", model.label)
        check_fingerprint(model, probe)
        if cached is None and model.fingerprint is not None and hasattr(encoder, "expect_probe"):
            # An encoder behind an API may change under its name at any time: it sends the probe
            # sentence with every request and refuses an answer whose probe vector is not this one.
            encoder.expect_probe(probe_text, model.fingerprint)
        self._encoders[_key(model)] = (encoder, probe)
        return encoder
