"""Encoders behind an API (kinds openai, voyage, ollama) against a real HTTP server on 127.0.0.1 that
speaks their APIs, backed by all-MiniLM-L6-v2 (bench/embedding_server.py): the real client, the real
worker, a real database. A provider that throttles, fails, goes down or changes its model never
makes a row dead nor writes a wrong vector; a text it refuses fails alone; the key is never stored,
logged or shown; what it costs is kept in vk.api_usage."""

import functools
import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

from bench.embedding_server import EmbeddingServer, malformed, status
from helpers import drain, one, running_lane
from vectorkeep.app import models
from vectorkeep.db.records import ModelVersion
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.encoders import load_encoder
from vectorkeep.workers.encoders.base import ProviderBusy
from vectorkeep.workers.families.text.api import ApiEncoder, forget_providers
from vectorkeep.workers.families.text.sentence_transformers import MINILM

KEY = "sk-test-0123456789abcdefSECRET"
KEY_ENV = "VK_TEST_PROVIDER_KEY"


@functools.cache
def minilm() -> Any:
    return load_encoder(ModelVersion(0, "minilm", 1, "sentence-transformers", 384, "cosine", {"source": MINILM}))


def encode(texts: list[str]) -> np.ndarray:
    return minilm().encode(texts)  # type: ignore[no-any-return]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddingServer]:
    monkeypatch.setenv(KEY_ENV, KEY)
    forget_providers()
    with EmbeddingServer(encode, api_key=KEY) as s:
        yield s
    forget_providers()


def params(server: EmbeddingServer, **more: Any) -> dict[str, Any]:
    return {
        "model": "text-embedding-test",
        "base_url": server.url + "/v1",
        "api_key_env": KEY_ENV,
        "max_inputs": 8,
        "max_wait": 2.0,
        **more,
    }


def register(url: str, server: EmbeddingServer, name: str = "api-mini", **more: Any) -> ModelVersion:
    return models.register_encoder(url, name, kind="openai", params=params(server, **more))


def add(conn: psycopg.Connection, model: str) -> None:
    conn.execute("SELECT vk.add_model('documents', %s)", (model,))


def queue(conn: psycopg.Connection, model: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT q.pk, q.attempts, q.dead, q.last_error, q.run_after > now() FROM vk.queue q "
        "JOIN vk.models m ON m.id = q.model_id WHERE m.name || '@' || m.version = %s ORDER BY q.pk",
        (model,),
    ).fetchall()


def vectors(conn: psycopg.Connection, model: str) -> dict[str, np.ndarray]:
    rows = conn.execute(
        "SELECT e.pk, e.embedding FROM vk.embeddings e JOIN vk.models m ON m.id = e.model_id "
        "WHERE m.name || '@' || m.version = %s",
        (model,),
    ).fetchall()
    return {pk: np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float32) for pk, v in rows}


def usage(conn: psycopg.Connection, model: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT sum(requests), sum(inputs), sum(tokens), sum(retries), sum(throttled_seconds), sum(failures) "
        "FROM vk.api_usage u JOIN vk.models m ON m.id = u.model_id WHERE m.name || '@' || m.version = %s",
        (model,),
    ).fetchone()
    assert row is not None
    names = ("requests", "inputs", "tokens", "retries", "throttled_seconds", "failures")
    return {n: (v or 0) for n, v in zip(names, row, strict=True)}


def ready_now(conn: psycopg.Connection) -> None:
    """Deferred rows due at once, and this process's back-off forgotten: the provider is back."""
    conn.execute("UPDATE vk.queue SET run_after = now() WHERE NOT dead")
    forget_providers()


def test_an_openai_encoder_embeds_searches_by_text_and_counts_its_use(
    conn: psycopg.Connection,
    db_url: str,
    encoders: EncoderCache,
    server: EmbeddingServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # everything the client and the worker log: the key is in none of it
    version = register(db_url, server)
    assert (version.kind, version.dim, version.label) == ("openai", 384, "api-mini@1")
    stored = one(conn, "SELECT params::text FROM vk.models WHERE name = 'api-mini'")
    assert KEY not in stored and KEY_ENV in stored and '"requests_per_minute": 3000' in stored
    conn.execute(
        "INSERT INTO vk.documents (body) SELECT 'text number ' || i || ' about the queue and its workers' "
        "FROM generate_series(1, 20) i"
    )
    add(conn, "api-mini@1")
    drain(db_url, encoders)
    api, local = vectors(conn, "api-mini@1"), vectors(conn, "minilm@1")
    assert len(api) == 20 and api.keys() == local.keys()
    # The same model behind the API: the same vectors.
    assert min(float(api[k] @ local[k]) / float(np.linalg.norm(api[k]) * np.linalg.norm(local[k])) for k in api) > 0.999
    # 20 texts, 8 a request less the probe sentence each carries: 3 requests; and 2 when the worker
    # loaded the encoder (its dimension, the probe's vector).
    used = usage(conn, "api-mini@1")
    assert used["requests"] == 5 and used["inputs"] == 22 and used["tokens"] > 20 and used["failures"] == 0
    assert all(KEY not in r.getMessage() for r in caplog.records)


@pytest.mark.needs_dblink
def test_a_text_query_goes_through_the_api_once_then_from_the_cache(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache, server: EmbeddingServer
) -> None:
    register(db_url, server)
    conn.execute(
        "INSERT INTO vk.documents (body) SELECT 'text number ' || i || ' about the queue' FROM generate_series(1, 9) i"
    )
    add(conn, "api-mini@1")
    drain(db_url, encoders)
    before = usage(conn, "api-mini@1")["requests"]
    # A text query through the API encoder, answered by the text-query lane.
    with running_lane(db_url, encoders):
        best = one(conn, "SELECT pk FROM vk.search('documents', 'text number 7 about the queue', 1, 'api-mini@1')")
        asked = server.requests
        # The same text again: from the text queries' cache (vk.embed_cache), no request.
        again = one(conn, "SELECT pk FROM vk.search('documents', 'text number 7 about the queue', 1, 'api-mini@1')")
        assert (again, server.requests) == (best, asked)
    assert best in vectors(conn, "api-mini@1")
    # Counted outside any job (job 0): the lane loaded the version (2 requests) and asked once.
    assert usage(conn, "api-mini@1")["requests"] - before >= 1
    assert one(conn, "SELECT sum(requests) FROM vk.api_usage WHERE job_id = 0") >= 1


def test_the_key_is_never_stored_and_a_missing_one_says_which_variable(
    db_url: str, server: EmbeddingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="never stored"):
        models.register_encoder(db_url, "k", kind="openai", params={**params(server), "api_key": KEY})
    with pytest.raises(ValueError, match="names an environment variable"):
        models.register_encoder(db_url, "k", kind="openai", params={**params(server), "api_key_env": KEY})
    with pytest.raises(ValueError, match="holds a credential"):
        models.register_encoder(db_url, "k", kind="openai", params={**params(server), "base_url": "https://u:p@h/v1"})
    with pytest.raises(ValueError, match="no parameter 'modle'"):
        models.register_encoder(db_url, "k", kind="openai", params={"modle": "x"})
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(Exception, match=KEY_ENV) as refused:
        register(db_url, server)
    assert KEY not in str(refused.value)
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-000000")
    with pytest.raises(ProviderBusy, match="refuses the key") as wrong:
        register(db_url, server)
    assert "sk-wrong-key-000000" not in str(wrong.value)


def test_a_throttled_provider_defers_its_rows_and_never_delays_another_version(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache, server: EmbeddingServer
) -> None:
    register(db_url, server)
    add(conn, "api-mini@1")
    drain(db_url, encoders)
    # A long Retry-After: the rows wait, their attempts untouched, while the local version's are embedded.
    server.script(status(429, retry_after=120))
    conn.execute("INSERT INTO vk.documents (body) VALUES ('first throttled'), ('second throttled')")
    requests = server.requests
    worker = drain(db_url, encoders)
    assert worker.stats.failed == 0
    waiting = queue(conn, "api-mini@1")
    assert [(a, d, later) for _, a, d, _, later in waiting] == [(0, False, True)] * 2
    assert all("429" in e for _, _, _, e, _ in waiting)
    assert len(vectors(conn, "minilm@1")) == len(vectors(conn, "api-mini@1")) + 2
    # While it backs off, no request goes to it: another batch of its rows is deferred at once.
    conn.execute("INSERT INTO vk.documents (body) VALUES ('third throttled')")
    drain(db_url, encoders)
    assert server.requests == requests + 1
    assert len(queue(conn, "api-mini@1")) == 3
    ready_now(conn)
    drain(db_url, encoders)
    assert queue(conn, "api-mini@1") == [] and len(vectors(conn, "api-mini@1")) == len(vectors(conn, "minilm@1"))
    # A failure (503, a malformed answer) is retried at once within the batch; a 429 defers even for a
    # second (sleeping in the batch would hold the other versions' rows), and is counted.
    before = usage(conn, "api-mini@1")
    server.script(status(503), malformed(), status(429, retry_after=1))
    conn.execute("INSERT INTO vk.documents (body) VALUES ('short throttle')")
    drain(db_url, encoders)
    [(_, attempts, dead, error, later)] = queue(conn, "api-mini@1")
    assert (attempts, dead, later) == (0, False, True) and "429" in error
    time.sleep(1.1)
    drain(db_url, encoders)
    assert queue(conn, "api-mini@1") == []
    after = usage(conn, "api-mini@1")
    assert after["retries"] - before["retries"] == 3 and after["throttled_seconds"] - before["throttled_seconds"] == 1
    assert after["failures"] - before["failures"] == 3


def test_a_text_the_provider_rejects_fails_alone(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache, server: EmbeddingServer
) -> None:
    register(db_url, server)
    add(conn, "api-mini@1")
    drain(db_url, encoders)
    server.reject = "POISON"
    conn.execute(
        "INSERT INTO vk.documents (body) SELECT CASE WHEN i = 4 THEN 'a POISON text' ELSE 'fine text ' || i END "
        "FROM generate_series(1, 7) i"
    )
    drain(db_url, encoders)
    left = queue(conn, "api-mini@1")
    assert len(left) == 1 and left[0][1] >= 1 and "refused the text (400)" in left[0][3]
    assert one(conn, "SELECT body FROM vk.documents WHERE id::text = %s", (left[0][0],)) == "a POISON text"
    assert len(vectors(conn, "api-mini@1")) == len(vectors(conn, "minilm@1")) - 1


def test_a_provider_down_mid_backfill_loses_nothing_and_kills_nothing(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache, server: EmbeddingServer
) -> None:
    conn.execute("INSERT INTO vk.documents (body) SELECT 'backfilled row ' || i FROM generate_series(1, 30) i")
    drain(db_url, encoders)
    register(db_url, server, retries=0, max_wait=0.0)
    server.stop()
    add(conn, "api-mini@1")
    for _ in range(3):
        drain(db_url, encoders)
        conn.execute("UPDATE vk.queue SET run_after = now() WHERE NOT dead")
    waiting = queue(conn, "api-mini@1")
    assert len(waiting) == 30 and not any(d for _, _, d, _, _ in waiting) and {a for _, a, _, _, _ in waiting} == {0}
    assert "unreachable" in waiting[0][3]
    server.start()
    ready_now(conn)
    drain(db_url, encoders)
    assert queue(conn, "api-mini@1") == [] and len(vectors(conn, "api-mini@1")) == 30


def test_a_provider_that_changes_its_model_is_caught_before_it_writes(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache, server: EmbeddingServer
) -> None:
    register(db_url, server)
    conn.execute("INSERT INTO vk.documents (body) VALUES ('kept as it was')")
    add(conn, "api-mini@1")
    drain(db_url, encoders)
    for change in ("changed", "extra_dim"):
        before = vectors(conn, "api-mini@1")
        setattr(server, change, True if change == "changed" else 1)
        conn.execute("UPDATE vk.documents SET body = body || ' and changed' WHERE body LIKE 'kept%'")
        drain(db_url, encoders)
        waiting = queue(conn, "api-mini@1")
        assert len(waiting) == 1 and waiting[0][1] == 0 and "ProviderChanged" in waiting[0][3]
        assert all(np.array_equal(before[k], v) for k, v in vectors(conn, "api-mini@1").items())
        setattr(server, change, False if change == "changed" else 0)
        ready_now(conn)
        drain(db_url, encoders)
        assert queue(conn, "api-mini@1") == []


def test_the_client_keeps_to_the_requests_a_minute(server: EmbeddingServer) -> None:
    encoder = ApiEncoder("openai", params(server, requests_per_minute=3, max_wait=0.0, concurrency=1))
    encoder.encode(["one"])
    encoder.encode(["two"])  # with the dimension asked at load: three requests
    sent = server.requests
    with pytest.raises(ProviderBusy, match="a minute are spent") as busy:
        encoder.encode(["three"])
    assert server.requests == sent and 55 < busy.value.retry_after <= 60


def test_ollama_and_voyage_kinds(db_url: str, server: EmbeddingServer) -> None:
    ollama = models.register_encoder(
        db_url, "local-ollama", kind="ollama", params={"model": "text-embedding-test", "base_url": server.url}
    )
    voyage = models.register_encoder(db_url, "voyage-mini", kind="voyage", params=params(server, input_type="query"))
    probe = encode(["the probe"])[0]
    for version in (ollama, voyage):
        assert version.dim == 384
        got = load_encoder(version).encode(["the probe"])[0]
        assert float(got @ probe) / float(np.linalg.norm(got) * np.linalg.norm(probe)) > 0.999


def test_a_reembed_jobs_api_use_is_in_jobs_show_prometheus_and_mlflow(
    conn: psycopg.Connection,
    db_url: str,
    encoders: EncoderCache,
    server: EmbeddingServer,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow.tracking import MlflowClient
    from prometheus_client import generate_latest

    from vectorkeep.app import jobs, mlflow_export
    from vectorkeep.cli.jobs import job_text
    from vectorkeep.workers.metrics import Metrics
    from vectorkeep.workers.service import Service
    from vectorkeep.workers.worker import WorkerSettings

    conn.execute("INSERT INTO vk.documents (body) SELECT 'row for the job ' || i FROM generate_series(1, 12) i")
    drain(db_url, encoders)
    register(db_url, server)
    job_id = one(conn, "SELECT vk.reembed('documents', 'api-mini@1')")
    service = Service(db_url, WorkerSettings(), encoders=encoders, text_queries=False)
    service.worker.metrics = metrics = Metrics()
    service.run(until_idle=True)
    job = jobs.get_job(db_url, job_id)
    assert job["status"] == "succeeded", job.get("error")
    assert job["api_usage"]["inputs"] >= 12 and job["api_usage"]["tokens"] > 12
    assert "API use (vk.api_usage):" in job_text(job)
    scraped = generate_latest(metrics.registry).decode()
    assert 'vectorkeep_api_inputs_total{model="api-mini@1"}' in scraped
    monkeypatch.chdir(tmp_path)  # MLflow's run artifacts land in ./mlruns
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    [result] = mlflow_export.export_jobs(db_url, tracking, "vk-api", [job_id])
    run = MlflowClient(tracking_uri=tracking).get_run(result.run_id)
    assert run.data.metrics["api.inputs"] == job["api_usage"]["inputs"]


def test_an_application_sees_the_use_of_the_jobs_it_may_see_only(
    conn: psycopg.Connection, db_url: str, server: EmbeddingServer, login: Any
) -> None:
    """Inputs counted per version tell how many rows a table holds: an application sees a job's figures
    when it may see the job (it may read its collection), the queue's (job 0) never."""
    register(db_url, server)
    add(conn, "api-mini@1")  # queues a reembed job
    job_id = one(conn, "SELECT max(id) FROM vk.jobs WHERE kind = 'reembed'")
    model_id = one(conn, "SELECT id FROM vk.models WHERE name = 'api-mini'")
    for job in (0, job_id):
        conn.execute("SELECT vk.record_api_usage_v1(%s, %s, 1, 10, 100, 0, 0, 0)", (model_id, job))
    app = login("vk_app")
    source = one(conn, "SELECT source::text FROM vk.collections WHERE name = 'documents'")
    conn.execute(f"REVOKE ALL ON {source} FROM PUBLIC, vk_app")
    with psycopg.connect(app) as as_app:
        assert one(as_app, "SELECT count(*) FROM vk.jobs") == 0
    with psycopg.connect(app) as as_app:
        assert one(as_app, "SELECT count(*) FROM vk.api_usage") == 0
    conn.execute(f"GRANT SELECT ON {source} TO vk_app")
    with psycopg.connect(app) as as_app:
        assert as_app.execute("SELECT job_id, inputs FROM vk.api_usage").fetchall() == [(job_id, 10)]
    with psycopg.connect(login("vk_worker")) as as_worker:
        assert one(as_worker, "SELECT count(*) FROM vk.api_usage") == 2


def test_a_text_longer_than_the_window_is_cut_and_flagged(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache, server: EmbeddingServer
) -> None:
    register(db_url, server, max_input_tokens=4)  # 12 characters at 3 a token
    conn.execute("INSERT INTO vk.documents (body) VALUES ('short text'), ('a text far longer than the window')")
    add(conn, "api-mini@1")
    drain(db_url, encoders)
    flags = conn.execute(
        "SELECT e.body, e.truncated FROM vk.embeddings e JOIN vk.models m ON m.id = e.model_id "
        "WHERE m.name = 'api-mini' ORDER BY e.pk"
    ).fetchall()
    assert flags == [("short text", False), ("a text far longer than the window", True)]
    cut = vectors(conn, "api-mini@1")[one(conn, "SELECT id::text FROM vk.documents WHERE body LIKE 'a text far%'")]
    assert float(cut @ encode(["a text far l"])[0]) > 0.999


def test_a_slow_provider_times_out_into_a_deferral_and_throttling_halves_the_concurrency(
    conn: psycopg.Connection,
    db_url: str,
    encoders: EncoderCache,
    server: EmbeddingServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.embedding_server import slow

    # A back-off longer than the drain, however slow a loaded machine makes it: the deferred
    # row must not come due (and be embedded) before the test reads the queue.
    monkeypatch.setattr(f"{ApiEncoder.__module__}.FIRST_BACKOFF", 60.0)
    register(db_url, server, timeout=0.5, retries=0, concurrency=4)
    conn.execute("INSERT INTO vk.documents (body) VALUES ('a slow answer')")
    add(conn, "api-mini@1")
    server.script(slow(2.0))
    drain(db_url, encoders)
    [(_, attempts, dead, error, later)] = queue(conn, "api-mini@1")
    assert (attempts, dead, later) == (0, False, True) and "Timeout" in error
    ready_now(conn)
    drain(db_url, encoders)
    assert queue(conn, "api-mini@1") == []
    # A 429 halves the requests in flight; twenty successes in a row give one back.
    encoder = ApiEncoder("openai", params(server, concurrency=4))
    server.script(status(429, retry_after=0))
    with pytest.raises(ProviderBusy):
        encoder.encode(["throttled"])
    assert encoder._state.concurrency == 2
    for i in range(20):
        encoder.encode([f"fine {i}"])
    assert encoder._state.concurrency == 3


def test_the_key_may_come_from_a_secret_file(
    db_url: str, server: EmbeddingServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv(KEY_ENV)
    secret = tmp_path / "openai-key"
    with pytest.raises(ProviderBusy, match="cannot read") as unread:
        register(db_url, server, api_key_file=str(secret))
    assert KEY not in str(unread.value)
    secret.write_text(KEY + "\n")
    version = register(db_url, server, api_key_file=str(secret))
    assert version.dim == 384 and KEY not in str(version.params)
