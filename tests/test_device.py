"""Where encoders run: the best device present unless VECTORKEEP_DEVICE says otherwise, a device
asked for that is missing is a clear error, and vectors are float32 whatever the device."""

import numpy as np
import psycopg
import pytest
import torch

from helpers import FAST_RETRY, cli, embeddings, one
from vectorkeep.workers.device import encode_batch_size, pick_device
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.families.text.sentence_transformers import MINILM, SentenceTransformerEncoder
from vectorkeep.workers.worker import Worker, WorkerSettings

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


def test_the_variable_overrides_the_automatic_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECTORKEEP_DEVICE", "cpu")
    assert pick_device() == "cpu" and pick_device("auto") == "cpu"
    monkeypatch.setenv("VECTORKEEP_DEVICE", "tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        pick_device()
    monkeypatch.delenv("VECTORKEEP_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert pick_device() == expected


@no_gpu
def test_cuda_asked_for_without_a_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="device 'cuda' was asked for, and this worker has no CUDA GPU"):
        pick_device("cuda")
    monkeypatch.setenv("VECTORKEEP_DEVICE", "cuda")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device()


def test_the_encode_batch_is_per_device_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VECTORKEEP_ENCODE_BATCH", raising=False)
    assert encode_batch_size("cpu", cpu=8, accelerator=128) == 8
    assert encode_batch_size("cuda", cpu=8, accelerator=128) == 128
    monkeypatch.setenv("VECTORKEEP_ENCODE_BATCH", "3")
    assert encode_batch_size("cuda", cpu=8, accelerator=128) == 3
    monkeypatch.setenv("VECTORKEEP_ENCODE_BATCH", "0")
    with pytest.raises(ValueError, match="VECTORKEEP_ENCODE_BATCH must be a positive whole number"):
        encode_batch_size("cpu", cpu=8, accelerator=128)


def test_an_encoder_follows_the_variables_and_returns_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECTORKEEP_DEVICE", "cpu")
    monkeypatch.setenv("VECTORKEEP_ENCODE_BATCH", "4")
    encoder = SentenceTransformerEncoder(MINILM)
    assert (encoder.device, encoder.batch_size) == ("cpu", 4)
    vectors = encoder.encode(["one", "two", "three", "four", "five"])
    assert vectors.dtype == np.float32 and vectors.shape == (5, 384)
    assert encoder.encode([]).shape == (0, 384)


@no_gpu
def test_a_worker_asked_for_cuda_without_one_fails_its_rows_with_the_reason(
    conn: psycopg.Connection, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECTORKEEP_DEVICE", "cuda")
    conn.execute("INSERT INTO vk.documents (body) VALUES ('on a GPU, please')")
    # A cache of its own: the session's has MiniLM loaded on the CPU already.
    Worker(db_url, WorkerSettings(retry=FAST_RETRY), encoders=EncoderCache()).run(until_idle=True)
    assert embeddings(conn) == {}
    error = one(conn, "SELECT last_error FROM vk.queue")
    assert "device 'cuda' was asked for, and this worker has no CUDA GPU" in error


@no_gpu
def test_the_worker_command_refuses_a_missing_device_at_once(db_url: str) -> None:
    # A process of its own: were the device not refused, a worker would start serving (signal handlers, a device).
    result = cli(db_url, "worker", "--device", "cuda", "--until-idle", process=True)
    assert result.returncode == 1
    assert "device 'cuda' was asked for, and this worker has no CUDA GPU" in result.stderr
