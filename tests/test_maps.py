"""Parametric UMAP maps: trained as a job, every row placed and kept current, gaps found and filled."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from helpers import cli, drain, one, save_untrained_inverter, serve
from vectorkeep.db import artifacts, registry
from vectorkeep.db.connect import connect
from vectorkeep.workers import map_gaps as gaps
from vectorkeep.workers.corpus import paragraphs
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.families.umap.model import MapModel, find_ab, fuzzy_graph

TEXTS = [t for _, t in paragraphs()]
FAST = '{"epochs": 8, "decoder_epochs": 80, "n_neighbors": 10}'


def test_the_fuzzy_graph_and_curve_are_umaps() -> None:
    a, b = find_ab(0.1)
    assert a == pytest.approx(1.577, abs=0.02) and b == pytest.approx(0.895, abs=0.02)  # umap-learn's values
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (30, 8)) + 5, rng.normal(0, 1, (30, 8)) - 5])
    heads, tails, weights = fuzzy_graph(x, 5)
    assert np.all((weights > 0) & (weights <= 1))
    # Symmetric, and every edge stays within its cluster.
    assert set(zip(heads.tolist(), tails.tolist(), strict=True)) == set(
        zip(tails.tolist(), heads.tolist(), strict=True)
    )
    assert np.all((heads < 30) == (tails < 30))


def count(conn: psycopg.Connection, sql: str, params: Any = None) -> int:
    return int(one(conn, sql, params))


@pytest.fixture(scope="module")
def mapped_template(server_url: str, corpus_template: str, encoders: EncoderCache) -> Iterator[tuple[str, int]]:
    """The corpus with map@1 trained on it by a umap job, once for the module: (its database, the job's id).
    The tests change their own copies of it (mapped_url)."""
    from conftest import CORPUS_TEMPLATE, drop_database, fresh_database

    name, url = fresh_database(server_url, CORPUS_TEMPLATE)
    try:
        with connect(url, autocommit=True) as conn:
            job_id = one(conn, "SELECT vk.train('map', 'umap', %s, collection => 'documents')", (FAST,))
        serve(url, encoders)
        yield name, job_id
    finally:
        drop_database(server_url, name)


@pytest.fixture
def mapped_url(server_url: str, mapped_template: tuple[str, int]) -> Iterator[str]:
    """A database of its own: a copy of mapped_template."""
    from conftest import drop_database, fresh_database

    name, url = fresh_database(server_url, mapped_template[0])
    yield url
    drop_database(server_url, name)


def test_a_map_trains_places_every_row_keeps_them_current_and_fills_gaps(
    mapped_url: str, mapped_template: tuple[str, int], encoders: EncoderCache, tmp_path: Path
) -> None:
    with connect(mapped_url, autocommit=True) as conn:
        assert one(conn, "SELECT status FROM vk.jobs WHERE id = %s", (mapped_template[1],)) == "succeeded"
        version = registry.by_spec(conn, "map@1")
        assert (version.kind, version.dim, version.params["source"]) == ("umap", 2, "minilm@1")
        metrics = one(conn, "SELECT metrics FROM vk.models WHERE id = %s", (version.id,))
        # Neighbours kept (random 2D placement scores about 0.5) and a decoder that reconstructs.
        assert metrics["trustworthiness"] > 0.6
        assert metrics["reconstruction_cosine"] > 0.2 and metrics["round_trip_error"] < 0.5
        assert count(conn, "SELECT count(*) FROM vk.coordinates WHERE model_id = %s", (version.id,)) == 400

        # New rows are placed by the worker that embeds them; deleted rows leave.
        new_id = one(conn, "INSERT INTO vk.documents (body) VALUES (%s) RETURNING id", (TEXTS[450],))
        drain(mapped_url, encoders)
        assert count(conn, "SELECT count(*) FROM vk.coordinates WHERE pk = %s", (str(new_id),)) == 1
        # Where the map puts the new text's vector.
        model = MapModel.load(version.params, artifacts.load(conn, version))
        vector = encoders.get(conn, registry.by_spec(conn, "minilm@1")).encode([TEXTS[450]])
        stored = conn.execute("SELECT x, y FROM vk.coordinates WHERE pk = %s", (str(new_id),)).fetchone()
        assert stored is not None and np.allclose(stored, model.to_2d(vector)[0], atol=1e-3)
        conn.execute("DELETE FROM vk.documents WHERE id = %s", (new_id,))
        assert count(conn, "SELECT count(*) FROM vk.coordinates WHERE model_id = %s", (version.id,)) == 400

        found = conn.execute("SELECT * FROM vk.map_gaps('map@1', 20, 3)").fetchall()
        assert found, "a 400-point map has empty cells between populated ones"
        (x0, x1, y0, y1) = conn.execute(
            "SELECT min(x), max(x), min(y), max(y) FROM vk.coordinates WHERE model_id = %s", (version.id,)
        ).fetchone()
        for cell_x, cell_y, x, y, neighbours in found:
            assert neighbours >= 3
            # The cell is empty, and its centre is where the function says.
            w, h = (x1 - x0) / 20, (y1 - y0) / 20
            assert x == pytest.approx(x0 + (cell_x - 0.5) * w) and y == pytest.approx(y0 + (cell_y - 0.5) * h)
            assert (
                count(
                    conn,
                    "SELECT count(*) FROM vk.coordinates WHERE model_id = %s "
                    "AND x >= %s AND x < %s AND y >= %s AND y < %s",
                    (version.id, x - w / 2 + 1e-9, x + w / 2 - 1e-9, y - h / 2 + 1e-9, y + h / 2 - 1e-9),
                )
                == 0
            )

        filled = gaps.fill(conn, version, [(found[0][2], found[0][3])], cells=20)[0]
        assert filled["nearest_text"] in TEXTS and filled["nearest_similarity"] > 0
        # No inverter for minilm@1 yet: the recovered text is the nearest stored one.
        assert (filled["method"], filled["model"], filled["text"]) == ("nearest", "minilm@1", filled["nearest_text"])
        assert filled["cosine"] == pytest.approx(filled["nearest_similarity"], abs=1e-3)
        assert isinstance(filled["in_cell"], bool)
        assert len(filled["vector"]) == 384 and abs(np.linalg.norm(filled["vector"]) - 1) < 1e-3

        # Activation is gated on the map's metrics.
        with pytest.raises(psycopg.errors.CheckViolation, match="trustworthiness"):
            conn.execute("SELECT vk.activate('documents', 'map@1', '{\"trustworthiness\": 0.9999}')")
        conn.execute("SELECT vk.activate('documents', 'map@1', '{\"trustworthiness\": 0.5}')")
        assert one(conn, "SELECT model_id FROM vk.deployments WHERE role = 'map'") == version.id

    done = cli(mapped_url, "map", "gaps", "--model", "map@1", "--cells", "20", "--fill", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('"nearest_text"') == 2
    picture = tmp_path / "map.png"
    done = cli(mapped_url, "map", "plot", "--model", "map@1", "--cells", "20", "--fill", "1", "--out", str(picture))
    assert done.returncode == 0, done.stderr
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000


def test_a_filled_gap_keeps_the_nearest_text_where_an_inverter_does_worse(
    mapped_url: str, encoders: EncoderCache, tmp_path: Path
) -> None:
    # An untrained inverter writes noise: the nearest stored text beats it, and is the answer.
    _, folder = save_untrained_inverter(tmp_path)
    done = cli(
        mapped_url,
        "models",
        "register",
        "inv",
        "--kind",
        "vec2text-inverter",
        "--source",
        str(folder),
        "--for",
        "minilm@1",
    )
    assert done.returncode == 0, done.stderr
    with connect(mapped_url, autocommit=True) as conn:
        version = registry.by_spec(conn, "map@1")
        x, y = conn.execute("SELECT x, y FROM vk.map_gaps('map@1', 20, 3) LIMIT 1").fetchone()
        filled = gaps.fill(conn, version, [(x, y)], cells=20, encoders=encoders)[0]
    tried = {t["method"]: t for t in filled["tried"]}
    assert set(tried) == {"nearest", "vec2text"} and tried["vec2text"]["model"] == "inv@1"
    assert tried["vec2text"]["cosine"] < tried["nearest"]["cosine"]
    assert (filled["method"], filled["text"], filled["cosine"]) == (
        "nearest",
        filled["nearest_text"],
        tried["nearest"]["cosine"],
    )
    assert filled["landed_x"] is not None and filled["target_error"] >= 0


def test_map_arguments_are_checked(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.WrongObjectType, match="not a map"):
        conn.execute("SELECT * FROM vk.map_gaps('minilm@1')")
    conn.rollback()
    with pytest.raises(psycopg.errors.UndefinedObject):
        conn.execute("SELECT * FROM vk.map_gaps('nowhere@1')")
