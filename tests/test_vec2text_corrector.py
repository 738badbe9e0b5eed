"""vec2text correctors: a tiny corrector trained as a job for a tiny inverter (itself trained with extra text),
its artifact reloaded, inversion with it; a pretrained one registered; and the device picked here (the CPU)."""

import re
from itertools import islice
from typing import Any

import numpy as np
import pytest
import torch
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from helpers import drain, one, save_untrained_inverter, serve
from vectorkeep.db import artifacts, registry
from vectorkeep.db.connect import connect
from vectorkeep.workers.corpus import sentences
from vectorkeep.workers.device import autocast, pick_device
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.families.vec2text import corrector as corrector_model
from vectorkeep.workers.families.vec2text.inverter import Vec2Text, load_corrector, load_vec2text
from vectorkeep.workers.inverter import Inversion
from vectorkeep.workers.training import is_heldout

# Few rows (the stable hash holds out 2 of these 40), short texts and a short decoder keep the generation in
# training and evaluation quick on a CPU (each held-out row is inverted there).
ROWS = 40
INVERTER = {"epochs": 1, "batch_size": 32, "max_length": 16, "extra_text": "docstrings", "max_extra": 64}
CORRECTOR = {"epochs": 1, "batch_size": 32, "steps": 1, "inverter": "inv@1", "device": "cpu"}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def train(conn: Any, url: str, encoders: EncoderCache, name: str, kind: str, params: dict[str, Any]) -> Any:
    """Train a version as a job; the job's row once it succeeded."""
    job_id = one(conn, "SELECT vk.train(%s, %s, %s, collection => 'documents')", (name, kind, Jsonb(params)))
    assert serve(url, encoders) == [job_id]  # neither makes vectors: no reembed job follows
    with conn.cursor(row_factory=dict_row) as cur:
        job = cur.execute("SELECT * FROM vk.jobs WHERE id = %s", (job_id,)).fetchone()
    assert job is not None and job["status"] == "succeeded", job and job["error"]
    return job


def test_a_tiny_corrector_trains_for_its_inverter_and_corrects_its_guesses(db_url: str, encoders: EncoderCache) -> None:
    with connect(db_url, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO vk.documents (body) VALUES (%s)", [(t,) for t in islice(sentences(), ROWS)])
        drain(db_url, encoders)
        minilm_version = registry.by_spec(conn, "minilm@1")
        minilm = encoders.get(conn, minilm_version)

        # The inverter learns from the collection's training rows and 64 docstring lines, and says so.
        trained = train(conn, db_url, encoders, "inv", "vec2text-inverter", INVERTER)
        pks = [str(r[0]) for r in conn.execute("SELECT id FROM vk.documents")]
        own = sum(not is_heldout(pk, 0.1) for pk in pks)
        assert trained["metrics"]["trained_on"] == f"{own} pairs of documents (minilm@1) + 64 docstring lines"
        assert trained["metrics"]["device"] == "cpu"
        inverter = registry.by_spec(conn, "inv@1")
        assert inverter.params["extra_text"] == "docstrings" and inverter.params["max_extra"] == 64

        job = train(conn, db_url, encoders, "fix", "vec2text-corrector", CORRECTOR)
        for key in ("train_loss", "val_loss", "hypothesis_mean_cosine", "inversion_mean_cosine"):
            assert job["metrics"][key] is not None, key
        assert re.fullmatch(r"\d+ pairs of documents \(minilm@1\)", job["metrics"]["trained_on"])
        version = registry.by_spec(conn, "fix@1")
        assert (version.kind, version.dim, version.params["inverter"]) == ("vec2text-corrector", 384, "inv@1")
        assert version.params["inverter_model_id"] == inverter.id
        assert version.params["encoder_model_id"] == minilm_version.id
        assert version.params["max_length"] == 16  # its inverter's

        # The artifact reloads: the corrector, and the inverter it was trained with, carried beside it.
        artifact = artifacts.load(conn, version)
        inverter_artifact = artifacts.load(conn, inverter)
        assert corrector_model.inverter_artifact(artifact) == inverter_artifact
        corrector = load_corrector(version, artifact, minilm)
        assert isinstance(corrector, corrector_model.Corrector) and corrector.dim == 384
        options = {"corrector": corrector, "steps": 2, "beam_width": 2}
        with_corrector = load_vec2text(inverter, inverter_artifact, minilm, options)
        assert isinstance(with_corrector, Vec2Text) and with_corrector.corrector is corrector

        target = registry.as_array(one(conn, "SELECT embedding FROM vk.embeddings ORDER BY pk LIMIT 1"))
        result = with_corrector.invert(target, [], 60.0)
        assert isinstance(result, Inversion) and result.text
        assert result.steps_run >= 1 and not result.timed_out
        # The cosine is that of the text, re-embedded, to the target.
        assert result.cosine == pytest.approx(cosine(minilm.encode([result.text])[0], target), abs=1e-4)

        # The corrector's own kind loads as an inverter too, and inverts the same way.
        alone = corrector_model.load_inverter(version, artifact, minilm, {"steps": 2, "beam_width": 2})
        again = alone.invert(target, [], 60.0)
        assert (again.text, again.cosine) == (result.text, pytest.approx(result.cosine, abs=1e-5))

        # A tiny time box still gives the inverter's first guess, and says the corrections were cut short.
        boxed = with_corrector.invert(target, [], 0.0)
        assert (boxed.steps_run, boxed.timed_out) == (0, True)


def test_a_pretrained_corrector_is_registered_for_an_inverter(
    db_url: str, encoders: EncoderCache, tmp_path: Any
) -> None:
    from vectorkeep.app import models
    from vectorkeep.workers.families.text.sentence_transformers import MINILM

    _, inverter_folder = save_untrained_inverter(tmp_path)
    # A tiny corrector saved the way vec2text saves one (its T5 in a folder of its own).
    original = corrector_model.build(MINILM, {"seed": 5}, 384)
    original.model.encoder_decoder.save_pretrained(tmp_path / "corrector-t5")
    original.tokenizer.save_pretrained(tmp_path / "corrector-t5")
    original.model.config.model_name_or_path = str(tmp_path / "corrector-t5")
    original.model.config.max_seq_length = 32
    original.model.save_pretrained(tmp_path / "corrector")

    models.register_inverter(db_url, "pre", source=str(inverter_folder), encoder="minilm@1")
    version = models.register_corrector(db_url, "prefix", source=str(tmp_path / "corrector"), inverter="pre@1")
    with connect(db_url, autocommit=True) as conn:
        inverter = registry.by_spec(conn, "pre@1")
        assert (version.kind, version.dim, version.params["inverter_model_id"]) == (
            "vec2text-corrector",
            384,
            inverter.id,
        )
        minilm = encoders.get(conn, registry.by_spec(conn, "minilm@1"))
        loaded = load_corrector(version, artifacts.load(conn, version), minilm)
    # The stored corrector writes what the saved one writes.
    rng = np.random.default_rng(0)
    target, guess = rng.standard_normal((2, 1, 384)).astype(np.float32)
    assert loaded.propose(target, ["a first guess"], guess, beam_width=2) == original.to("cpu").propose(
        target, ["a first guess"], guess, beam_width=2
    )
    with pytest.raises(ValueError, match="corrects a vec2text-inverter; minilm@1 is sentence-transformers"):
        models.register_corrector(db_url, "bad", source=str(tmp_path / "corrector"), inverter="minilm@1")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this worker has a CUDA GPU")
def test_the_device_is_the_cpu_here_in_full_precision() -> None:
    assert pick_device() == "cpu" and pick_device("auto") == "cpu" and pick_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")
    with autocast("cpu"):  # no autocast on a CPU: float32 stays float32
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
