"""The fake provider of bench/embedding_server.py: its wire formats and its injected faults.

These test the test tool itself, so the encoder is a cheap deterministic one (hash-seeded random
unit vectors of dimension 8), not a real model, and no database fixture is used. Requests go through
urllib.request over a real socket, as any client's would.
"""

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from bench.embedding_server import EmbeddingServer, count_tokens, drop, malformed, status

DIM = 8
KEY = "sk-test-secret"


def fake_encode(texts: list[str]) -> np.ndarray:
    """Unit vectors seeded by each text's hash: the same text always gives the same vector."""
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(DIM)
        rows.append(v / np.linalg.norm(v))
    return np.array(rows, dtype=np.float32)


def post(url: str, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """POST JSON (or raw bytes); the status, headers and body, whatever the status."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def server() -> Iterator[EmbeddingServer]:
    with EmbeddingServer(fake_encode, api_key=KEY) as s:
        yield s


def openai(server: EmbeddingServer, payload: dict[str, Any], key: str | None = KEY) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    code, head, body = post(server.url + "/v1/embeddings", {"model": server.model, **payload}, headers)
    return code, head, json.loads(body)


def test_openai_voyage_and_ollama_answer_the_encoders_vectors(server: EmbeddingServer) -> None:
    texts = ["hello world", "a second text here"]
    expected = fake_encode(texts)

    code, _, body = openai(server, {"input": texts, "encoding_format": "float"})
    assert code == 200
    assert body["object"] == "list" and body["model"] == server.model
    assert [d["index"] for d in body["data"]] == [0, 1]
    np.testing.assert_allclose([d["embedding"] for d in body["data"]], expected, rtol=1e-6)
    tokens = sum(count_tokens(t) for t in texts)
    assert tokens == 3 + 5
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}

    # Voyage: its own option names; the right dimension passes, another is a 400 naming the one supported.
    code, _, body = openai(server, {"input": "hello world", "output_dimension": DIM, "input_type": "document"})
    assert code == 200 and len(body["data"][0]["embedding"]) == DIM
    code, _, body = openai(server, {"input": "hello world", "dimensions": 256})
    assert code == 400 and str(DIM) in body["error"]["message"]

    # Ollama: no auth, its own shape; the ":latest" tag names the same model.
    code, _, raw = post(server.url + "/api/embed", {"model": server.model + ":latest", "input": texts})
    body = json.loads(raw)
    assert code == 200 and body["prompt_eval_count"] == tokens
    np.testing.assert_allclose(body["embeddings"], expected, rtol=1e-6)

    assert (server.requests, server.accepted, server.inputs) == (4, 3, 5)
    assert server.statuses == {200: 3, 400: 1}


def test_bad_requests(server: EmbeddingServer) -> None:
    assert openai(server, {"input": ""})[0] == 400
    assert openai(server, {"input": "x", "model": "other-model"})[0] == 404
    assert post(server.url + "/v1/embeddings", b"{not json", {"Authorization": f"Bearer {KEY}"})[0] == 400
    server.max_inputs = 2
    assert openai(server, {"input": ["a", "b", "c"]})[0] == 400
    assert server.accepted == 0


def test_api_key_is_required_and_never_echoed(server: EmbeddingServer) -> None:
    for key in (None, "sk-wrong"):
        code, _, body = openai(server, {"input": "x"}, key=key)
        assert code == 401 and body["error"]["message"] == "Incorrect API key provided"
        assert KEY not in json.dumps(body)
    assert openai(server, {"input": "x"})[0] == 200


def test_scripted_answers_then_normal_ones(server: EmbeddingServer) -> None:
    server.script(status(429, retry_after=2), status(503), malformed(), drop())
    code, headers, body = openai(server, {"input": "x"})
    assert code == 429 and headers["Retry-After"] == "2" and body["error"]["code"] == "rate_limit_exceeded"
    code, _, body = openai(server, {"input": "x"})
    assert code == 503 and body["error"]["type"] == "server_error"
    code, _, raw = post(server.url + "/v1/embeddings", {"model": server.model, "input": "x"})
    assert code == 200
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        post(server.url + "/v1/embeddings", {"model": server.model, "input": "x"})
    assert openai(server, {"input": "x"})[0] == 200
    assert server.requests == 5 and server.accepted == 1
    assert server.statuses == {429: 1, 503: 1, 200: 2}


def test_rate_windows_answer_429_with_retry_after(server: EmbeddingServer) -> None:
    server.requests_per_minute = 2
    assert [openai(server, {"input": "x"})[0] for _ in range(2)] == [200, 200]
    code, headers, body = openai(server, {"input": "x"})
    assert code == 429 and 1 <= int(headers["Retry-After"]) <= 60 and body["error"]["type"] == "requests"

    server.requests_per_minute = None
    server.tokens_per_minute = 2 * count_tokens("x") + count_tokens("one two")  # room for one 3-token request
    assert openai(server, {"input": "one two"})[0] == 200
    code, headers, body = openai(server, {"input": "x"})
    assert code == 429 and int(headers["Retry-After"]) >= 1 and body["error"]["type"] == "tokens"
    assert server.accepted == 3 and server.tokens == 2 * 2 + 3


def test_rejected_input_fails_the_whole_request(server: EmbeddingServer) -> None:
    server.reject = "forbidden"
    code, _, body = openai(server, {"input": ["fine", "a forbidden word", "fine too"]})
    assert code == 400 and body["error"]["message"].startswith("input 1 is rejected")
    assert body["error"]["type"] == "invalid_request_error" and server.accepted == 0


def test_changed_model_and_wrong_dimension(server: EmbeddingServer) -> None:
    real = fake_encode(["some text"])[0]
    server.changed = True
    got = np.array(openai(server, {"input": "some text"})[2]["data"][0]["embedding"])
    assert abs(float(got @ real)) < 0.99 and abs(float(np.linalg.norm(got)) - 1) < 1e-5
    server.changed, server.extra_dim = False, 3
    got = np.array(openai(server, {"input": "some text"})[2]["data"][0]["embedding"])
    assert got.shape == (DIM + 3,) and not got[DIM:].any()


def test_stopped_server_refuses_then_comes_back_on_the_same_port(server: EmbeddingServer) -> None:
    url = server.url
    assert openai(server, {"input": "x"})[0] == 200
    server.stop()
    with pytest.raises(urllib.error.URLError) as refused:
        post(url + "/v1/embeddings", {"model": server.model, "input": "x"})
    assert isinstance(refused.value.reason, ConnectionRefusedError)
    server.start()
    assert server.url == url and openai(server, {"input": "x"})[0] == 200
