"""A real HTTP embeddings server on 127.0.0.1, for tests and benchmarks of the hosted-provider path.

It speaks the three wire formats a hosted encoder can have:

- OpenAI and Voyage: ``POST /v1/embeddings`` (clients take ``url + "/v1"`` as their base URL);
- Ollama: ``POST /api/embed`` (no authentication, as Ollama has none).

The vectors come from a real encoder passed in (``encode(texts) -> (n, d) array``), so whatever a
test or benchmark stores can be compared with what the local encoder gives. On top of it the server
misbehaves on demand, the way providers do: rate limits with ``Retry-After``, 5xx, slow answers,
malformed bodies, dropped connections, rejected inputs, a silently changed model, a wrong dimension,
and being down altogether (``stop()``, then ``start()`` again on the same port). Faults are either
persistent (plain attributes, changed at any time while serving) or scripted for the next requests
(``script(status(429, retry_after=1), slow(2), drop())``).

Why a real socket rather than a mocked client: the point is to exercise the client's own HTTP stack
(timeouts, keep-alive, retries, header parsing) exactly as it meets a provider.

Tokens: a text counts ``len(text.split()) + 1`` tokens. Deterministic and cheap, roughly a word
count; it only has to make ``tokens_per_minute`` and ``usage`` predictable, not match a tokenizer.

Order of checks for each request on an embeddings path:
count it in ``requests``; the next scripted step, if any; auth (OpenAI/Voyage only); parse and
validate the JSON (400, or 404 for another model); ``max_inputs`` (400); the request and token
windows (429 + Retry-After); ``reject`` (400); encode (and the dimension asked for, 400); ``delay``;
answer.

Standard library (http.server, threading, json) and numpy only, so it runs wherever the tests do.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

import numpy as np

__all__ = [
    "OLLAMA_PATH",
    "OPENAI_PATH",
    "WINDOW_SECONDS",
    "EmbeddingServer",
    "Step",
    "count_tokens",
    "drop",
    "malformed",
    "slow",
    "status",
]

OPENAI_PATH = "/v1/embeddings"  # OpenAI and Voyage
OLLAMA_PATH = "/api/embed"
WINDOW_SECONDS = 60.0  # the sliding window of requests_per_minute and tokens_per_minute
MALFORMED_BODY = b'{"data": ['  # a 200 whose body a client cannot parse: a truncated answer

# The OpenAI "type" of an error body for each status, so clients that switch on it see what they would.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "requests",
    500: "server_error",
    502: "server_error",
    503: "server_error",
}


def count_tokens(text: str) -> int:
    """Tokens of one text: words + 1. Deterministic, so rate-limit and usage tests can predict it."""
    return len(text.split()) + 1


@dataclass(frozen=True)
class Step:
    """One scripted answer, used for exactly one request (see ``EmbeddingServer.script``).

    Build them with ``status``, ``slow``, ``malformed`` and ``drop`` rather than directly.
    """

    kind: Literal["status", "slow", "malformed", "drop"]
    code: int = 200
    retry_after: float | str | None = None
    body: Any = None  # dict/list -> JSON, str/bytes -> sent as is, None -> a provider-like error body
    seconds: float = 0.0


def status(code: int, retry_after: float | str | None = None, body: Any = None) -> Step:
    """Answer this HTTP status once (with a Retry-After header when retry_after is given).

    A number is written as integer seconds when whole, else as a decimal (the openai client parses
    floats; fractional values keep tests fast); a str (an HTTP date, say) is sent as is.
    """
    return Step("status", code=code, retry_after=retry_after, body=body)


def slow(seconds: float) -> Step:
    """Sleep this long, then handle the request normally: a provider slower than the client's timeout."""
    return Step("slow", seconds=seconds)


def malformed() -> Step:
    """Answer 200 with a body that is not JSON (a truncated answer)."""
    return Step("malformed")


def drop() -> Step:
    """Close the connection without any answer (the client sees the server disconnect)."""
    return Step("drop")


class _Refusal(Exception):
    """An error answer decided while handling a request; carries what the client is sent."""

    def __init__(self, code: int, message: str, *, error_type: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_type = error_type
        self.retry_after = retry_after


@dataclass
class _Slot:
    """A request's place in the rate windows, reserved when it passes them and released if it fails later."""

    at: float
    tokens: int


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its EmbeddingServer and keeps quiet about clients hanging up."""

    daemon_threads = True
    allow_reuse_address = True  # start() after stop() re-binds the same port despite TIME_WAIT

    def __init__(self, owner: EmbeddingServer, port: int) -> None:
        self.owner = owner
        # Bind only: the port is ours from the start (url is known before start()), but nothing
        # listens, so a client is refused until start() - the same "provider down" as after stop().
        super().__init__(("127.0.0.1", port), _Handler, bind_and_activate=False)
        try:
            self.server_bind()
        except BaseException:
            self.server_close()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that goes away mid-answer is normal here (timeouts, stop()); anything else is printed."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive as real providers (and pooled clients) use."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        """Register the connection so stop() can cut it: keep-alive sockets must not outlive the server."""
        super().setup()
        self.server.owner._track(self.connection)

    def finish(self) -> None:
        """Forget the connection (see setup)."""
        try:
            super().finish()
        finally:
            self.server.owner._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log on stderr: a benchmark makes thousands of requests."""

    def do_POST(self) -> None:
        """The embeddings endpoints; anything else is a 404 that counters ignore."""
        path = self.path.split("?", 1)[0].rstrip("/")
        body = self._read_body()
        if path not in (OPENAI_PATH, OLLAMA_PATH):
            self._send_json(404, {"error": {"message": f"Unknown path {path}", "type": "invalid_request_error"}})
            return
        self.server.owner._serve(self, ollama=path == OLLAMA_PATH, raw=body)

    def do_GET(self) -> None:
        """Embeddings are POST only (405 there, 404 elsewhere), as on the real APIs."""
        path = self.path.split("?", 1)[0].rstrip("/")
        code = 405 if path in (OPENAI_PATH, OLLAMA_PATH) else 404
        self._send_json(
            code, {"error": {"message": f"{HTTPStatus(code).phrase}: GET {path}", "type": "invalid_request_error"}}
        )

    def _read_body(self) -> bytes:
        """Read the whole request body (Content-Length or chunked) so keep-alive stays in step."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """Write one complete answer; a client that already hung up is ignored."""
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _send_json(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(payload).encode(), headers)


class EmbeddingServer:
    """An OpenAI/Voyage/Ollama embeddings server over a real encoder, with injectable misbehaviour.

    ``url`` is known from construction (the port is bound then); nothing answers until ``start()``.
    Persistent behaviours are plain attributes read under a lock for each request, so a test may
    change them while the server runs. Counters are updated under the same lock, just before the
    answer is written (so a client that has its answer always sees it counted); ``statuses`` has
    every status answered (a scripted ``malformed()`` counts as 200 there but not in ``accepted``,
    a ``drop()`` nowhere but ``requests``).
    """

    def __init__(
        self,
        encode: Callable[[list[str]], np.ndarray],
        *,
        model: str = "text-embedding-test",
        api_key: str | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        max_inputs: int = 2048,
        port: int = 0,
    ) -> None:
        self._encode = encode
        self.model = model
        self.api_key = api_key
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.max_inputs = max_inputs
        self.reject: str | None = None
        self.changed = False
        self.extra_dim = 0
        self.delay = 0.0

        self._lock = threading.Lock()
        # The encoder is called from one thread at a time: local encoders (torch models) are not
        # safe to share between threads, and the server's threads are one per connection.
        self._encode_lock = threading.Lock()
        self._script: collections.deque[Step] = collections.deque()
        self._window: list[_Slot] = []
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

        self.requests = 0
        self.accepted = 0
        self.inputs = 0
        self.tokens = 0
        self.statuses: collections.Counter[int] = collections.Counter()
        self.accepted_at: list[float] = []

        self._server: _Server | None = _Server(self, port)
        self.port: int = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> EmbeddingServer:
        """Serve in a daemon thread; after stop(), bind the same port again (the provider comes back)."""
        with self._lock:
            if self._thread is not None:
                return self
            if self._server is None:
                self._server = _Server(self, self.port)
            server = self._server
            server.server_activate()
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},  # stop() waits at most this long for the loop
                name=f"embedding-server-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and cut open connections: clients then get connection refused."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server, self._thread = None, None
        if server is None:
            return
        if thread is not None:
            server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join()

    def __enter__(self) -> EmbeddingServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- behaviour ---------------------------------------------------------------------------------

    def script(self, *steps: Step) -> None:
        """Force the answers of the next requests, one step per request, in order.

        Steps are queued after any still pending from an earlier call; requests after the last
        step are handled normally (with the persistent behaviours).
        """
        with self._lock:
            self._script.extend(steps)

    def reset_counters(self) -> None:
        """Zero the counters (not the script, the rate windows or the behaviours): one bench phase each."""
        with self._lock:
            self.requests = self.accepted = self.inputs = self.tokens = 0
            self.statuses = collections.Counter()
            self.accepted_at = []

    # -- internals ---------------------------------------------------------------------------------

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _serve(self, handler: _Handler, *, ollama: bool, raw: bytes) -> None:
        """Handle one request on an embeddings path, in the documented order of checks."""
        with self._lock:
            self.requests += 1
            step = self._script.popleft() if self._script else None
        if step is not None:
            if step.kind == "slow":
                time.sleep(step.seconds)
            else:
                self._answer_step(handler, step, ollama=ollama)
                return
        slot: _Slot | None = None
        try:
            with self._lock:
                api_key = self.api_key
            if not ollama and api_key is not None and handler.headers.get("Authorization") != f"Bearer {api_key}":
                # Never the key itself in the answer, not even masked: it would land in logs.
                raise _Refusal(401, "Incorrect API key provided", error_type="invalid_request_error")
            request = self._parse(raw, ollama=ollama)
            texts: list[str] = request["texts"]
            tokens = sum(count_tokens(t) for t in texts)
            slot = self._admit(len(texts), tokens)
            with self._lock:
                reject = self.reject
            if reject is not None:
                for i, text in enumerate(texts):
                    if reject in text:
                        raise _Refusal(400, f"input {i} is rejected: it contains content this model refuses")
            vectors = self._vectors(texts, request.get("dimensions"))
            with self._lock:
                delay = self.delay
            if delay > 0:
                time.sleep(delay)
        except _Refusal as refusal:
            self._release(slot)
            self._answer_refusal(handler, refusal, ollama=ollama)
            return
        except Exception as exc:  # the encoder failed: a provider's 500, never a dead handler thread
            self._release(slot)
            self._answer_refusal(
                handler, _Refusal(500, f"The server had an error: {type(exc).__name__}"), ollama=ollama
            )
            return
        if ollama:
            payload: dict[str, Any] = {
                "model": request["model"],
                "embeddings": vectors.tolist(),
                "total_duration": 0,
                "load_duration": 0,
                "prompt_eval_count": tokens,
            }
        else:
            payload = {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": value}
                    for i, value in enumerate(_encode_rows(vectors, request["encoding_format"]))
                ],
                "model": self.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        body = json.dumps(payload).encode()
        with self._lock:
            self.accepted += 1
            self.inputs += len(texts)
            self.tokens += tokens
            self.statuses[200] += 1
            self.accepted_at.append(time.monotonic())
        handler._send(200, body)

    def _parse(self, raw: bytes, *, ollama: bool) -> dict[str, Any]:
        """The request's texts and options, or the 400/404 the real API gives for a bad one."""
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Refusal(400, f"We could not parse the JSON body of your request: {exc}") from None
        if not isinstance(body, dict):
            raise _Refusal(400, "The request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _Refusal(400, "you must provide a model parameter" if not ollama else "model is required")
        served = {self.model, f"{self.model}:latest"} if ollama else {self.model}
        if model not in served:
            if ollama:
                raise _Refusal(404, f'model "{model}" not found, try pulling it first')
            raise _Refusal(404, f"The model `{model}` does not exist or you do not have access to it.")
        value = body.get("input")
        if ollama and value == "":
            texts: list[str] = []  # Ollama answers an empty input with no embeddings
        elif isinstance(value, str):
            texts = [value]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value) and (value or ollama):
            texts = list(value)
        else:
            raise _Refusal(400, "'$.input' is invalid: it must be a string or a non-empty list of strings")
        if not ollama and any(t == "" for t in texts):
            raise _Refusal(400, "'$.input' is invalid: an input must not be an empty string")
        request: dict[str, Any] = {"model": model, "texts": texts}
        if ollama:
            return request
        encoding_format = body.get("encoding_format") or "float"
        if encoding_format not in ("float", "base64"):
            raise _Refusal(400, f"encoding_format {encoding_format!r} is invalid: use 'float' or 'base64'")
        request["encoding_format"] = encoding_format
        input_type = body.get("input_type")
        if input_type not in (None, "query", "document"):
            raise _Refusal(400, f"input_type {input_type!r} is invalid: use null, 'query' or 'document'")
        dimensions = body.get("dimensions", body.get("output_dimension"))
        if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool)):
            raise _Refusal(400, f"dimensions {dimensions!r} is invalid: it must be an integer")
        request["dimensions"] = dimensions
        return request

    def _admit(self, n_inputs: int, tokens: int) -> _Slot:
        """Check max_inputs and the sliding windows; reserve the request's place in them.

        The place is taken here, under the lock, so concurrent requests cannot all slip under the
        limit; a request that fails later gives it back (_release): only accepted requests count.
        """
        with self._lock:
            if n_inputs > self.max_inputs:
                raise _Refusal(400, f"Too many inputs: {n_inputs}; the most in one request is {self.max_inputs}")
            now = time.monotonic()
            self._window = [s for s in self._window if s.at > now - WINDOW_SECONDS]
            rpm, tpm = self.requests_per_minute, self.tokens_per_minute
            if rpm is not None and len(self._window) >= rpm:
                # Free once enough of the oldest requests leave that this one fits.
                oldest = self._window[len(self._window) - rpm].at if rpm > 0 else now
                raise _Refusal(
                    429,
                    f"Rate limit reached for requests: limit {rpm} per min. Please try again later.",
                    error_type="requests",
                    retry_after=_retry_seconds(oldest + WINDOW_SECONDS - now),
                )
            if tpm is not None:
                used = sum(s.tokens for s in self._window)
                if used + tokens > tpm:
                    wait = WINDOW_SECONDS  # a request over the whole limit never fits: say a full window
                    if tokens <= tpm:
                        for s in self._window:
                            used -= s.tokens
                            if used + tokens <= tpm:
                                wait = s.at + WINDOW_SECONDS - now
                                break
                    raise _Refusal(
                        429,
                        f"Rate limit reached for tokens: limit {tpm} per min, used {used}, requested {tokens}.",
                        error_type="tokens",
                        retry_after=_retry_seconds(wait),
                    )
            slot = _Slot(now, tokens)
            self._window.append(slot)
            return slot

    def _release(self, slot: _Slot | None) -> None:
        if slot is None:
            return
        with self._lock:
            self._window = [s for s in self._window if s is not slot]

    def _vectors(self, texts: list[str], dimensions: int | None) -> np.ndarray:
        """Encode, check the dimension asked for, then apply the model-change and dimension faults."""
        if texts:
            with self._encode_lock:
                vectors = np.asarray(self._encode(texts), dtype=np.float32)
        else:
            vectors = np.zeros((0, 0), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise RuntimeError(f"the encoder answered shape {vectors.shape} for {len(texts)} texts")
        dim = vectors.shape[1]
        if dimensions is not None and texts and dimensions != dim:
            raise _Refusal(400, f"dimensions={dimensions} is not supported: {self.model} supports only {dim}")
        with self._lock:
            changed, extra_dim = self.changed, self.extra_dim
        if changed and texts:
            # Another model's vectors: same shape and norm, unrelated direction to the real ones.
            vectors = np.roll(vectors, 1, axis=1)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)
        if extra_dim > 0:
            vectors = np.concatenate([vectors, np.zeros((len(texts), extra_dim), dtype=np.float32)], axis=1)
        return vectors

    def _answer_step(self, handler: _Handler, step: Step, *, ollama: bool) -> None:
        """Answer a scripted status, malformed body or dropped connection."""
        if step.kind == "drop":
            handler.close_connection = True  # no bytes at all; the socket is closed when the handler ends
            return
        if step.kind == "malformed":
            self._count(200)
            handler._send(200, MALFORMED_BODY)
            return
        headers = {}
        if step.retry_after is not None:
            headers["Retry-After"] = _retry_header(step.retry_after)
        if step.body is None:
            message = "Rate limit reached. Please try again later." if step.code == 429 else _phrase(step.code)
            body = _error_body(step.code, message, _ERROR_TYPES.get(step.code, "server_error"), ollama=ollama)
        elif isinstance(step.body, bytes):
            body = step.body
        elif isinstance(step.body, str):
            body = step.body.encode()
        else:
            body = json.dumps(step.body).encode()
        self._count(step.code)
        handler._send(step.code, body, headers)

    def _answer_refusal(self, handler: _Handler, refusal: _Refusal, *, ollama: bool) -> None:
        headers = {} if refusal.retry_after is None else {"Retry-After": str(refusal.retry_after)}
        error_type = refusal.error_type or _ERROR_TYPES.get(refusal.code, "server_error")
        self._count(refusal.code)
        handler._send(refusal.code, _error_body(refusal.code, refusal.message, error_type, ollama=ollama), headers)

    def _count(self, code: int) -> None:
        with self._lock:
            self.statuses[code] += 1


def _error_body(code: int, message: str, error_type: str, *, ollama: bool) -> bytes:
    """The error body of each API: Ollama's is a bare string, OpenAI's an object (Voyage clients accept it)."""
    if ollama:
        return json.dumps({"error": message}).encode()
    error: dict[str, Any] = {"message": message, "type": error_type, "param": None, "code": None}
    if code == 401:
        error["code"] = "invalid_api_key"
    elif code == 429:
        error["code"] = "rate_limit_exceeded"
    return json.dumps({"error": error}).encode()


def _phrase(code: int) -> str:
    """A scripted error's message: the status's standard phrase, so logs show which fault was injected."""
    try:
        return f"Scripted {code}: {HTTPStatus(code).phrase}"
    except ValueError:
        return f"Scripted {code}"


def _retry_seconds(seconds: float) -> int:
    """Retry-After of a rate window: whole seconds, rounded up, at least 1 (never "retry now, fail again")."""
    return max(1, math.ceil(seconds))


def _retry_header(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _encode_rows(vectors: np.ndarray, encoding_format: str) -> Iterator[Any]:
    """Rows as JSON floats, or as base64 of little-endian float32 (what the openai client asks by default)."""
    if encoding_format == "base64":
        for row in vectors:
            yield base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
    else:
        yield from vectors.tolist()
