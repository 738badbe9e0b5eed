"""Encoders behind an HTTP API: any OpenAI-compatible embeddings endpoint, Voyage and Ollama.

What the peers' users report is what this gets right:

- A provider that throttles (429, with or without Retry-After), fails (5xx), times out or cannot be
  reached says nothing about the texts: the worker defers the rows without spending an attempt
  (vk.defer_row_v1). A 429 defers at once; a failure is first retried `retries` times, a fraction
  of a second apart. Then the provider backs off (its Retry-After, or 1 s doubled per failure in a
  row up to 30 s) and no request is sent to it meanwhile: every encode raises ProviderBusy at once,
  so its rows wait and no other version's do. Nothing here sleeps for a provider's back-off inside a
  batch (that would hold the batch's other rows): only for this process's own per-minute budgets, up
  to max_wait seconds (the text-query lane: 0).
- One text the API rejects (400, 413, 422) fails alone: encode_each splits the request in halves
  until the rejected text stands by itself.
- Requests stay within the provider's limits: inputs and (estimated) tokens per request, requests
  and tokens per minute (a budget per provider, base URL and model, shared by the threads of a
  process), and a concurrency that halves on a 429 and grows back after a run of successes.
- The key is read from the environment variable the version names (api_key_env), never stored in
  the database; it is never logged and is masked out of any error text the provider sends back.
- Every request carries the probe sentence once the version's fingerprint is known, and its vector
  must match the recorded one: a provider that changes the model behind a name is caught before
  anything it returns is written (ProviderChanged, the rows deferred).
- What it costs is counted (Usage) and the worker adds it to vk.api_usage in the batch's transaction.

Token counts for limits and truncation are estimates (characters / CHARS_PER_TOKEN): the providers'
tokenizers are not shipped here. The providers' own counts, from their answers, go to vk.api_usage.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vectorkeep.workers.encoders.base import (
    EncoderError,
    InputRejected,
    ProviderBusy,
    ProviderChanged,
    ProviderThrottled,
)
from vectorkeep.workers.encoders.usage import Usage

log = logging.getLogger(__name__)

# A conservative estimate of characters per token (English BPE averages about 4): used to keep requests
# under the token limits and to cut a text to the model's window before the provider refuses it.
CHARS_PER_TOKEN = 3
# The pause before a quick retry of a failed request, doubled for the next one.
QUICK_RETRY = 0.25
# Successes in a row after which a throttled concurrency grows by one again.
GROW_AFTER = 20
# Back-off when a provider fails without saying how long to wait: doubles per failure in a row.
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# How long rows wait when the provider answers with another model than the recorded one, or refuses
# the key: an operator has to act, and the rows must not die meanwhile.
CHANGED_BACKOFF = 300.0
_SECRET = re.compile(r"(sk|pa|key)-[A-Za-z0-9_\-]{6,}")


@dataclass(frozen=True)
class Preset:
    """What differs between providers: where to post, how to read the answer, where the key lives."""

    path: str
    key_env: str | None
    body: Callable[[dict[str, Any], list[str]], dict[str, Any]]
    vectors: Callable[[dict[str, Any]], list[list[float]]]
    tokens: Callable[[dict[str, Any]], int | None]


def _openai_body(params: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": params["model"], "input": texts, "encoding_format": "float"}
    if params.get("dimensions"):
        body["dimensions"] = params["dimensions"]
    return body


def _voyage_body(params: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": params["model"], "input": texts}
    if params.get("dimensions"):
        body["output_dimension"] = params["dimensions"]
    if params.get("input_type"):
        body["input_type"] = params["input_type"]
    return body


def _ollama_body(params: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": params["model"], "input": texts, "truncate": True}
    if params.get("dimensions"):
        body["dimensions"] = params["dimensions"]
    return body


def _data_vectors(answer: dict[str, Any]) -> list[list[float]]:
    # OpenAI's and Voyage's answers say each vector's index; the order is not promised.
    return [d["embedding"] for d in sorted(answer["data"], key=lambda d: d["index"])]


def _usage_tokens(answer: dict[str, Any]) -> int | None:
    usage = answer.get("usage") or {}
    value = usage.get("total_tokens", usage.get("prompt_tokens"))
    return int(value) if value is not None else None


def _ollama_tokens(answer: dict[str, Any]) -> int | None:
    value = answer.get("prompt_eval_count")
    return int(value) if value is not None else None


PRESETS: dict[str, Preset] = {
    "openai": Preset("/embeddings", "OPENAI_API_KEY", _openai_body, _data_vectors, _usage_tokens),
    "voyage": Preset("/embeddings", "VOYAGE_API_KEY", _voyage_body, _data_vectors, _usage_tokens),
    "ollama": Preset("/api/embed", None, _ollama_body, lambda a: a["embeddings"], _ollama_tokens),
}


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


class _Provider:
    """What one process knows of a provider (base URL, model): its budget, its back-off, its concurrency.
    Shared by every encoder of that provider in the process (the lane's and the main loop's), since the
    provider counts them together."""

    def __init__(self, rpm: int, tpm: int, concurrency: int) -> None:
        self.lock = threading.Lock()
        self.rpm, self.tpm = rpm, tpm
        self.sent: deque[tuple[float, int]] = deque()  # (time, tokens) of the last minute's requests
        self.blocked_until = 0.0
        self.block_reason = ""
        self.failures_in_a_row = 0
        self.max_concurrency = concurrency
        self.concurrency = concurrency
        self.successes = 0

    def wait_for(self, tokens: int, now: float) -> float:
        """Seconds until a request of this many tokens fits the per-minute budgets (0: now)."""
        while self.sent and self.sent[0][0] <= now - 60.0:
            self.sent.popleft()
        wait = 0.0
        if self.rpm and len(self.sent) >= self.rpm:
            wait = max(wait, self.sent[len(self.sent) - self.rpm][0] + 60.0 - now)
        if self.tpm:
            used = sum(t for _, t in self.sent)
            if used + tokens > self.tpm:
                freed = used + tokens - self.tpm
                for at, t in self.sent:
                    freed -= t
                    if freed <= 0:
                        wait = max(wait, at + 60.0 - now)
                        break
        return wait

    def throttled(self, retry_after: float, reason: str) -> None:
        with self.lock:
            self.blocked_until = max(self.blocked_until, time.monotonic() + retry_after)
            self.block_reason = reason
            self.concurrency = max(1, self.concurrency // 2)
            self.successes = 0

    def failed(self) -> float:
        """A failure without a wait given: the back-off to use, doubled per failure in a row."""
        with self.lock:
            self.failures_in_a_row += 1
            return min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (self.failures_in_a_row - 1))

    def succeeded(self) -> None:
        with self.lock:
            self.failures_in_a_row = 0
            self.successes += 1
            if self.successes >= GROW_AFTER and self.concurrency < self.max_concurrency:
                self.concurrency += 1
                self.successes = 0


_providers: dict[tuple[str, str, str], _Provider] = {}
_providers_lock = threading.Lock()


def _provider(kind: str, params: dict[str, Any]) -> _Provider:
    key = (kind, str(params["base_url"]), str(params["model"]))
    with _providers_lock:
        found = _providers.get(key)
        if found is None:
            found = _Provider(
                int(params.get("requests_per_minute") or 0),
                int(params.get("tokens_per_minute") or 0),
                int(params.get("concurrency") or 1),
            )
            _providers[key] = found
        return found


def forget_providers() -> None:
    """Drop what this process learnt of every provider (its back-off, budget and concurrency): tests."""
    with _providers_lock:
        for state in _providers.values():
            # Encoders loaded already hold their provider's state: reset it in place.
            with state.lock:
                state.sent.clear()
                state.blocked_until, state.block_reason, state.failures_in_a_row = 0.0, "", 0
                state.concurrency, state.successes = state.max_concurrency, 0


def retry_after_seconds(value: str | None, default: float) -> float:
    """Retry-After in seconds: a number, or an HTTP date."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        return max(0.0, when.timestamp() - time.time())


@dataclass
class ApiEncoder:
    """An encoder behind an HTTP API; kind is openai, voyage or ollama (PRESETS)."""

    kind: str
    params: dict[str, Any]
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        import httpx

        self.preset = PRESETS[self.kind]
        self.max_inputs = int(self.params.get("max_inputs") or 64)
        self.max_request_tokens = int(self.params.get("max_request_tokens") or 0)
        self.max_input_tokens = int(self.params.get("max_input_tokens") or 0)
        self.max_wait = float(self.params.get("max_wait", 2.0))
        self.retries = int(self.params.get("retries", 2))
        self._key = self._read_key()
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        self._client = httpx.Client(
            base_url=str(self.params["base_url"]).rstrip("/"),
            headers=headers,
            timeout=float(self.params.get("timeout", 30.0)),
        )
        self._state = _provider(self.kind, self.params)
        self._usage_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, self._state.max_concurrency))
        self._probe: tuple[str, np.ndarray] | None = None
        self._dim = 0
        self._dim = int(self.params.get("dimensions") or 0) or self._ask_dimension()

    def _read_key(self) -> str | None:
        name = self._key_env = str(self.params.get("api_key_env", self.preset.key_env) or "")
        secret = self.params.get("api_key_file")
        if secret:
            # A named secret (Docker's /run/secrets/..., a Kubernetes secret volume): read at each load.
            self._key_env = f"in the file {secret}"
            try:
                key = Path(str(secret)).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ProviderBusy(
                    f"{self.kind} reads its API key from {secret}, which this worker cannot read "
                    f"({type(exc).__name__}); mount the secret there",
                    CHANGED_BACKOFF,
                ) from None
            if not key:
                raise ProviderBusy(f"{self.kind}: the key file {secret} is empty", CHANGED_BACKOFF)
            return key
        if not name:
            return None
        key = os.environ.get(name, "")
        if not key:
            # The operator's to fix, not the rows': they wait (ProviderBusy) rather than spend their attempts.
            raise ProviderBusy(
                f"{self.kind} needs an API key: set the environment variable {name} where the worker runs "
                "(the key is never stored in the database)",
                CHANGED_BACKOFF,
            )
        return key

    @property
    def dim(self) -> int:
        return self._dim

    def _ask_dimension(self) -> int:
        return int(self._post(["dimension"])[0].shape[0])

    def expect_probe(self, text: str, vector: Sequence[float] | np.ndarray) -> None:
        """Send the probe sentence with every request and refuse an answer whose probe vector is not this."""
        # Cut to the window as when its fingerprint was taken (encode cuts every text).
        self._probe = (self._cut(text), np.asarray(vector, dtype=np.float32))

    # --- texts -----------------------------------------------------------------------------------

    @property
    def window(self) -> int:
        """The window in words, for chunking (which counts words for an encoder without a tokenizer here):
        about 0.75 of a word a token, the providers' own rule of thumb."""
        return max(1, self.max_input_tokens * 3 // 4) if self.max_input_tokens else 0

    def _cut(self, text: str) -> str:
        if not self.max_input_tokens:
            return text
        return text[: self.max_input_tokens * CHARS_PER_TOKEN]

    def truncated(self, texts: list[str]) -> list[bool]:
        """Texts cut to the model's window (estimated tokens over max_input_tokens)."""
        return [len(self._cut(t)) < len(t) for t in texts]

    def _requests(self, texts: list[str]) -> list[list[int]]:
        """Indexes of texts, grouped into requests within the inputs and tokens a request may hold."""
        groups: list[list[int]] = []
        current: list[int] = []
        tokens = 0
        probe = 1 if self._probe else 0
        for i, text in enumerate(texts):
            t = estimate_tokens(text)
            full = len(current) + probe >= self.max_inputs
            heavy = self.max_request_tokens and current and tokens + t > self.max_request_tokens
            if current and (full or heavy):
                groups.append(current)
                current, tokens = [], 0
            current.append(i)
            tokens += t
        if current:
            groups.append(current)
        return groups

    # --- encoding ----------------------------------------------------------------------------------

    def encode(self, texts: list[str]) -> np.ndarray:
        """A float32 array (len(texts), dim); raises InputRejected when the provider refuses a text."""
        results = self._encode(texts, each=False)
        return np.stack(results) if results else np.zeros((0, self._dim), dtype=np.float32)  # type: ignore[arg-type]

    def encode_each(self, texts: list[str]) -> list[np.ndarray | str]:
        """Each text's vector, or why the provider refused that text (the others still get theirs)."""
        return self._encode(texts, each=True)

    def _encode(self, texts: list[str], *, each: bool) -> list[np.ndarray | str]:
        cut = [self._cut(t) for t in texts]
        out: list[np.ndarray | str] = [""] * len(cut)
        groups = self._requests(cut)
        at = 0
        while at < len(groups):
            self._check_blocked()
            wave = groups[at : at + max(1, self._state.concurrency)]
            at += len(wave)
            if len(wave) == 1:
                answers = [self._group(cut, wave[0], each)]
            else:
                answers = list(self._pool.map(lambda g: self._group(cut, g, each), wave))
            for group, answer in zip(wave, answers, strict=True):
                for i, result in zip(group, answer, strict=True):
                    out[i] = result
        return out

    def _group(self, texts: list[str], group: list[int], each: bool) -> list[np.ndarray | str]:
        batch = [texts[i] for i in group]
        if not each:
            return list(self._post(batch))
        try:
            return list(self._post(batch))
        except InputRejected as exc:
            if len(batch) == 1:
                return [str(exc)]
            half = len(group) // 2
            return self._group(texts, group[:half], each) + self._group(texts, group[half:], each)

    def _check_blocked(self) -> None:
        """While the provider backs off (a 429, failures in a row), ProviderBusy at once, with no request:
        never a sleep here, which would hold the batch's other versions' rows."""
        with self._state.lock:
            left = self._state.blocked_until - time.monotonic()
            reason = self._state.block_reason
        if left > 0:
            raise ProviderBusy(f"{self._name()} backs off for {left:.1f}s more: {reason}", left)

    def _name(self) -> str:
        return f"{self.kind} model {self.params['model']!r}"

    def _reserve(self, tokens: int) -> None:
        """Take a request's place in the per-minute budgets, waiting up to max_wait; else ProviderBusy."""
        while True:
            with self._state.lock:
                now = time.monotonic()
                wait = self._state.wait_for(tokens, now)
                if wait <= 0:
                    self._state.sent.append((now, tokens))
                    return
            if wait > self.max_wait:
                raise ProviderBusy(f"{self._name()}: the requests or tokens a minute are spent for now", wait)
            self._count(throttled_seconds=wait)
            time.sleep(wait)

    def _count(self, **delta: float) -> None:
        with self._usage_lock:
            for name, value in delta.items():
                setattr(self.usage, name, getattr(self.usage, name) + value)

    def take_usage(self) -> Usage:
        """What was used since the last call (the worker records it with the batch)."""
        with self._usage_lock:
            taken, self.usage = self.usage, Usage()
        return taken

    def _post(self, texts: list[str]) -> np.ndarray:
        """One request (its probe sentence first, once known). A failure (5xx, malformed, unreachable) is
        retried at once, up to `retries` times, after QUICK_RETRY seconds and twice that: a blip costs the
        batch a fraction of a second. A 429, a changed model or failures beyond that raise ProviderBusy:
        the worker defers the rows, and the provider's back-off spares the next batches the requests."""
        sent = [self._probe[0], *texts] if self._probe else texts
        tokens = sum(estimate_tokens(t) for t in sent)
        attempt = 0
        while True:
            self._check_blocked()
            self._reserve(tokens)
            if self._state.failures_in_a_row:
                self._count(retries=1)  # the last request to this provider failed: this one sends again
            try:
                answer = self._send(sent)
                vectors = self._vectors(answer, len(sent))
            except (ProviderThrottled, ProviderChanged):
                raise  # the provider's back-off is set already
            except ProviderBusy as exc:
                if attempt >= self.retries:
                    # Spare the next batches the requests: they defer their rows at once until then.
                    self._state.throttled(exc.retry_after, str(exc))
                    raise
                time.sleep(min(self.max_wait, QUICK_RETRY * 2**attempt))
                attempt += 1
                continue
            self._count(requests=1, inputs=len(texts), tokens=self.preset.tokens(answer) or tokens)
            self._state.succeeded()
            return vectors[1:] if self._probe else vectors

    def _send(self, texts: list[str]) -> dict[str, Any]:
        import httpx

        try:
            response = self._client.post(self.preset.path, json=self.preset.body(self.params, texts))
        except httpx.HTTPError as exc:  # refused, reset, timed out: the provider, not the texts
            self._count(failures=1)
            wait = self._state.failed()
            reason = f"{self._name()} unreachable ({type(exc).__name__}: {self._mask(str(exc))})"
            raise ProviderBusy(reason, wait) from None
        status = response.status_code
        if status == 200:
            try:
                answer: dict[str, Any] = response.json()
                return answer
            except ValueError:
                self._count(failures=1)
                wait = self._state.failed()
                raise ProviderBusy(f"{self._name()} answered with malformed JSON", wait) from None
        self._count(failures=1)
        message = self._mask(_error_message(response))
        if status == 429:
            wait = retry_after_seconds(response.headers.get("retry-after"), self._state.failed())
            reason = f"{self._name()} throttles (429): {message}"
            self._state.throttled(wait, reason)
            self._count(throttled_seconds=wait)
            raise ProviderThrottled(reason, wait)
        if status in (401, 403):
            reason = f"{self._name()} refuses the key ({status}: {message}); " + (
                f"set the key ({self._key_env}) where the worker runs"
                if self._key_env
                else "the version sends none (api_key_env is empty): register a version with api_key_env"
            )
            self._state.throttled(CHANGED_BACKOFF, reason)
            raise ProviderBusy(reason, CHANGED_BACKOFF)
        if status == 404:
            raise EncoderError(f"{self._name()} is not served at {self.params['base_url']} (404: {message})")
        if status in (400, 413, 422):
            raise InputRejected(f"{self._name()} refused the text ({status}): {message}")
        wait = retry_after_seconds(response.headers.get("retry-after"), self._state.failed())
        raise ProviderBusy(f"{self._name()} failed ({status}): {message}", wait)

    def _vectors(self, answer: dict[str, Any], n: int) -> np.ndarray:
        try:
            vectors = np.asarray(self.preset.vectors(answer), dtype=np.float32)
        except (KeyError, TypeError, ValueError):
            self._count(failures=1)
            raise ProviderBusy(f"{self._name()} answered without vectors", self._state.failed()) from None
        if vectors.ndim != 2 or vectors.shape[0] != n:
            raise ProviderBusy(f"{self._name()} answered {len(vectors)} vectors for {n} texts", self._state.failed())
        if self._dim and vectors.shape[1] != self._dim:
            reason = f"{self._name()} now answers {vectors.shape[1]}-dimensional vectors, not {self._dim}"
            self._state.throttled(CHANGED_BACKOFF, reason)
            raise ProviderChanged(reason, CHANGED_BACKOFF)
        if self._probe is not None:
            from vectorkeep.workers.encoders.registry import FINGERPRINT_MIN_COSINE, fingerprint_cosine

            cosine = fingerprint_cosine(self._probe[1], vectors[0])
            if cosine < FINGERPRINT_MIN_COSINE:
                reason = (
                    f"{self._name()} is not the model this version was registered with: probe vector cosine "
                    f"{cosine:.4f} < {FINGERPRINT_MIN_COSINE} (register a new version if the change is wanted)"
                )
                self._state.throttled(CHANGED_BACKOFF, reason)
                raise ProviderChanged(reason, CHANGED_BACKOFF)
        return vectors

    def _mask(self, text: str) -> str:
        if self._key:
            text = text.replace(self._key, "***")
        return _SECRET.sub("***", text)[:500]


def _error_message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text)[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or body)[:200]


def load(kind: str) -> Callable[[dict[str, Any], bytes | None], ApiEncoder]:
    def loader(params: dict[str, Any], artifact: bytes | None) -> ApiEncoder:
        from vectorkeep.db import kinds

        if not params.get("model"):
            raise EncoderError(f"a {kind} encoder needs params.model (the provider's model name)")
        return ApiEncoder(kind, kinds.kind(kind).with_defaults(params))

    return loader


load_openai = load("openai")
load_voyage = load("voyage")
load_ollama = load("ollama")
