"""Model versions: list them, register an encoder or a pretrained inverter or corrector, activate one, retire one.

numpy and the encoders are imported when a version is registered, not with this module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from vectorkeep.db.connect import connect
from vectorkeep.sql import query

if TYPE_CHECKING:
    from vectorkeep.db.records import ModelVersion

__all__ = [
    "ModelVersion",
    "activate",
    "list_models",
    "register_corrector",
    "register_encoder",
    "register_inverter",
    "retire",
]


def __getattr__(name: str) -> Any:
    # ModelVersion, re-exported from db.records (which imports numpy) when first read.
    if name == "ModelVersion":
        from vectorkeep.db.records import ModelVersion

        return ModelVersion
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_models(url: str) -> list[dict[str, Any]]:
    """Every model version with its kind, dimension, status and params."""
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query("list_models")).fetchall()


def register_encoder(
    url: str,
    name: str,
    *,
    source: str | None = None,
    kind: str = "sentence-transformers",
    params: Mapping[str, Any] | None = None,
    distance: str = "cosine",
    storage: str = "vector",
) -> ModelVersion:
    """The next version of an external encoder: a Hugging Face name or a local path (source), or a
    model behind an API (kinds openai, voyage, ollama: params model, base_url, limits ...).

    The params are checked against the kind (vectorkeep.db.kinds) and stored with their defaults;
    an API key is never among them (the worker reads it from the variable api_key_env names). The
    encoder is loaded here: its dimension and its fingerprint (the vector of the probe sentence)
    come from the encoder itself. storage: vector, or halfvec (its HNSW index and searches in half
    precision), in the same transaction.
    """
    from vectorkeep.db import kinds, registry
    from vectorkeep.workers.encoders.registry import load_kind

    given = dict(params or {})
    if source is not None:
        given["source"] = source
    params = kinds.check_params(kind, given)
    encoder = load_kind(kind, params)
    with connect(url) as conn:
        fingerprint = encoder.encode([registry.probe_text(conn)])[0]
        version = registry.register(
            conn, name=name, kind=kind, dim=encoder.dim, distance=distance, params=params, fingerprint=fingerprint
        )
        if storage != "vector":
            conn.execute(query("set_storage"), {"model": version.label, "storage": storage})
        conn.commit()
    return version


def register_inverter(url: str, name: str, *, source: str, encoder: str, t5: str | None = None) -> ModelVersion:
    """A pretrained vec2text inverter as a model version tied to the encoder version it inverts, its weights stored.

    source: the inverter's folder or hub name; t5: a local copy of its T5 (default: as its config says).
    """
    from vectorkeep.db import registry
    from vectorkeep.workers.families.vec2text import pretrained
    from vectorkeep.workers.families.vec2text.model import to_artifact
    from vectorkeep.workers.families.vec2text.trainer import encoder_source

    with connect(url) as conn:
        inverted = registry.by_spec(conn, encoder)
        encoder_path = encoder_source(inverted)
        model, params = pretrained.load(source, encoder_path, inverted.dim, t5)
        recorded = {
            **params,
            "encoder_model_id": inverted.id,
            "encoder": inverted.label,
            "encoder_source": encoder_path,
        }
        version = registry.register(conn, name=name, kind="vec2text-inverter", dim=inverted.dim, params=recorded)
        registry.store_trained(
            conn, version.id, artifact=to_artifact(model), dim=inverted.dim, params=recorded, metrics={}
        )
        conn.commit()
        return registry.by_id(conn, version.id)


def register_corrector(url: str, name: str, *, source: str, inverter: str, t5: str | None = None) -> ModelVersion:
    """A pretrained vec2text corrector as a model version tied to the vec2text inverter it corrects (a version
    registered or trained here), its weights stored with that inverter's (workers.families.vec2text.corrector).

    source: the corrector's folder or hub name; t5: a local copy of its T5 (default: as its config says).
    """
    from vectorkeep.db import artifacts, registry
    from vectorkeep.workers.families.vec2text import corrector, pretrained
    from vectorkeep.workers.families.vec2text.corrector_trainer import INVERTER_KIND, INVERTER_PARAMS

    with connect(url) as conn:
        corrected = registry.by_spec(conn, inverter)
        if corrected.kind != INVERTER_KIND:
            raise ValueError(f"a vec2text corrector corrects a {INVERTER_KIND}; {corrected.label} is {corrected.kind}")
        encoder = registry.by_id(conn, int(corrected.params["encoder_model_id"]))
        encoder_path = str(corrected.params["encoder_source"])
        model, params = pretrained.load_corrector(source, encoder_path, encoder.dim, t5)
        recorded = {
            **params,
            "inverter": corrected.label,
            "inverter_model_id": corrected.id,
            "inverter_params": {k: corrected.params[k] for k in INVERTER_PARAMS if k in corrected.params},
            "encoder_model_id": encoder.id,
            "encoder": encoder.label,
            "encoder_source": encoder_path,
        }
        artifact = corrector.to_artifact(model, artifacts.load(conn, corrected))
        version = registry.register(conn, name=name, kind="vec2text-corrector", dim=encoder.dim, params=recorded)
        registry.store_trained(conn, version.id, artifact=artifact, dim=encoder.dim, params=recorded, metrics={})
        conn.commit()
        return registry.by_id(conn, version.id)


def activate(url: str, model: str, collection: str, gates: Mapping[str, Any] | None = None) -> str:
    """Make a version the collection's search model (vk.activate), if it passes the metric gates; its label."""
    with connect(url, autocommit=True) as conn:
        row = conn.execute(
            query("activate"), {"collection": collection, "model": model, "gates": Jsonb(dict(gates or {}))}
        ).fetchone()
    assert row is not None
    return str(row[0])


def retire(url: str, model: str, collection: str | None = None, *, confirm: bool = False) -> int:
    """Retire a version (from one collection, or everywhere) and delete its vectors; how many were deleted.

    Where it has vectors, only with confirm (vk.retire refuses otherwise, saying how many)."""
    with connect(url, autocommit=True) as conn:
        row = conn.execute(query("retire"), {"model": model, "collection": collection, "confirm": confirm}).fetchone()
    assert row is not None
    return int(row[0])
