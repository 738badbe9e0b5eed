"""Next-vector models over ordered rows: windows built in SQL, trained as jobs, gated, asked from SQL."""

from collections import defaultdict
from collections.abc import Iterator

import psycopg
import pytest

from helpers import drain, one, serve
from vectorkeep.db import registry
from vectorkeep.db.connect import connect
from vectorkeep.db.settings import url_with_database
from vectorkeep.workers.corpus import paragraphs
from vectorkeep.workers.encoder_cache import EncoderCache

SECTIONS_TEMPLATE = "vk_sections_template"


@pytest.fixture(scope="session")
def sections_template(server_url: str, template_url: str, encoders: EncoderCache) -> str:
    """The pydoc topics as documents: up to 12 paragraphs each, in order, embedded with minilm@1;
    built once per session (a template database), like the corpus."""
    from conftest import TEMPLATE, admin

    by_topic: dict[str, list[str]] = defaultdict(list)
    for topic, text in paragraphs():
        by_topic[topic].append(text)
    rows = [
        (topic, pos, text)
        for topic, texts in sorted(by_topic.items())
        if len(texts) >= 6
        for pos, text in enumerate(texts[:12])
    ]
    with admin(server_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SECTIONS_TEMPLATE}")
        conn.execute(f"CREATE DATABASE {SECTIONS_TEMPLATE} TEMPLATE {TEMPLATE}")
    url = url_with_database(server_url, SECTIONS_TEMPLATE)
    with connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE sections (id serial PRIMARY KEY, topic text, pos int, body text)")
        conn.cursor().executemany("INSERT INTO sections (topic, pos, body) VALUES (%s, %s, %s)", rows)
        conn.execute("SELECT vk.attach('sections', 'id', 'body', 'minilm@1')")
        conn.execute("SELECT vk.set_order('sections', 'topic', 'pos')")
    drain(url, encoders)
    return url


@pytest.fixture
def sections(server_url: str, sections_template: str) -> Iterator[str]:
    """A database of its own holding the embedded, ordered sections."""
    from conftest import drop_database, fresh_database

    name, url = fresh_database(server_url, SECTIONS_TEMPLATE)
    yield url
    drop_database(server_url, name)


def test_windows_are_built_in_sql_in_order(sections: str) -> None:
    with connect(sections, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT group_key, target_pk FROM vk.sequence_windows_v1(vk.collection_id('sections'), 1, 4)"
        ).fetchall()
        groups = one(conn, "SELECT count(DISTINCT topic) FROM sections")
        # Every row after the fourth of its topic is a target, with its four predecessors as context.
        assert len(rows) == one(conn, "SELECT count(*) FROM sections WHERE pos >= 4") and groups == 29
        pk = rows[0][1]
        topic, pos = conn.execute("SELECT topic, pos FROM sections WHERE id = %s::int", (pk,)).fetchone()
        context = one(
            conn,
            "SELECT context_vectors FROM vk.sequence_windows_v1(vk.collection_id('sections'), 1, 4) "
            "WHERE target_pk = %s",
            (pk,),
        )
        expected = conn.execute(
            "SELECT e.embedding FROM sections s JOIN vk.embeddings e ON e.pk = s.id::text "
            "AND e.collection_id = vk.collection_id('sections') WHERE s.topic = %s AND s.pos BETWEEN %s AND %s "
            "ORDER BY s.pos",
            (topic, pos - 4, pos - 1),
        ).fetchall()
        assert [list(v.to_numpy()) for v in context] == [list(e[0].to_numpy()) for e in expected]


def test_each_kind_trains_as_a_job_with_its_metrics(sections: str, encoders: EncoderCache) -> None:
    with connect(sections, autocommit=True) as conn:
        for kind in ("lvm-lstm", "lvm-gru", "lvm-transformer"):
            conn.execute("SELECT vk.train(%s, %s, '{\"epochs\": 3, \"hidden\": 64}', 'sections')", (kind, kind))
        serve(sections, encoders)
        for kind in ("lvm-lstm", "lvm-gru", "lvm-transformer"):
            version = registry.by_spec(conn, kind)
            metrics = one(conn, "SELECT metrics FROM vk.models WHERE id = %s", (version.id,))
            assert version.status == "ready" and version.dim == 384, kind
            for key in (
                "val_cosine",
                "val_baseline_last_cosine",
                "val_baseline_mean_cosine",
                "val_margin_over_baseline",
                "test_ood_cosine",
                "test_ood_baseline_mean_cosine",
                "latency_ms",
            ):
                assert isinstance(metrics[key], float), (kind, key)
            assert len(metrics["history"]) == 3 and metrics["windows"]["test_ood"] > 0


def test_the_gate_refuses_a_model_that_does_not_beat_the_baseline(sections: str, encoders: EncoderCache) -> None:
    with connect(sections, autocommit=True) as conn:
        # No training: the network is its "mean of the context" starting point.
        conn.execute("SELECT vk.train('flat', 'lvm-lstm', '{\"epochs\": 1, \"lr\": 1e-7, \"hidden\": 32}', 'sections')")
        serve(sections, encoders)
        metrics = one(conn, "SELECT metrics FROM vk.models WHERE name = 'flat'")
        assert metrics["val_cosine"] == metrics["val_baseline_mean_cosine"]
        with pytest.raises(psycopg.errors.CheckViolation, match="does not beat its baselines"):
            conn.execute("SELECT vk.activate('sections', 'flat@1')")
        assert one(conn, "SELECT count(*) FROM vk.deployments") == 0
        with pytest.raises(psycopg.errors.UndefinedObject, match="no active next-vector model"):
            conn.execute("SELECT vk.predict_next('sections', 'compound')")


def test_a_prediction_is_asked_for_in_sql_and_answered_with_stored_texts(sections: str, encoders: EncoderCache) -> None:
    with connect(sections, autocommit=True) as conn:
        conn.execute(
            "SELECT vk.train('next', 'lvm-gru', '{\"epochs\": 20, \"hidden\": 64, "
            '"gates": {"latency_ms": {"max": 1000}}}\', \'sections\')'
        )
        serve(sections, encoders)
        job_id = one(conn, "SELECT vk.predict_next('sections', 'compound', 'next@1')")
        serve(sections, encoders)
        assert one(conn, "SELECT status FROM vk.jobs WHERE id = %s", (job_id,)) == "succeeded"
        context = one(conn, "SELECT context_pks FROM vk.predictions WHERE job_id = %s", (job_id,))
        last_four = [
            str(r[0])
            for r in conn.execute("SELECT id FROM sections WHERE topic = 'compound' AND pos >= 8 ORDER BY pos")
        ]
        assert context == last_four
        nearest = conn.execute("SELECT * FROM vk.predicted(%s, 3)", (job_id,)).fetchall()
        # No inverter for minilm@1: the prediction reads back as its nearest stored texts.
        assert len(nearest) == 3 and all(-1 <= s <= 1 and m == "nearest" for _, _, s, m, _ in nearest)
        with pytest.raises(psycopg.errors.NoDataFound):
            conn.execute("SELECT * FROM vk.predicted(-1)")


def test_order_and_prediction_arguments_are_checked(sections: str, encoders: EncoderCache) -> None:
    with connect(sections, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="do not evaluate"):
            conn.execute("SELECT vk.set_order('sections', 'no_such_column', 'pos')")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="bad order expression"):
            conn.execute("SELECT vk.set_order('sections', 'topic; DROP TABLE sections', 'pos')")
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="has no order"):
            conn.execute("SELECT vk.predict_next('documents', 'x', 'minilm@1')")
        with pytest.raises(psycopg.errors.WrongObjectType, match="not next-vector: it cannot predict next vectors"):
            conn.execute("SELECT vk.predict_next('sections', 'compound', 'minilm@1')")
        conn.execute("SELECT vk.train('next', 'lvm-lstm', '{\"epochs\": 1, \"hidden\": 32}', 'sections')")
        serve(sections, encoders)
        # A group with too few rows: the job fails with the reason, and vk.predicted says so.
        job_id = one(conn, "SELECT vk.predict_next('sections', 'no such topic', 'next@1')")
        serve(sections, encoders)
        assert one(conn, "SELECT status FROM vk.jobs WHERE id = %s", (job_id,)) == "failed"
        with pytest.raises(psycopg.errors.NoDataFound) as failed:
            conn.execute("SELECT * FROM vk.predicted(%s)", (job_id,))
        assert "has 0 embedded rows" in str(failed.value.diag.message_hint)
