"""The model registry (vk.models) as typed records."""

from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from vectorkeep.db import artifacts
from vectorkeep.db.records import ModelVersion
from vectorkeep.sql import query


def as_array(value: Any) -> np.ndarray:
    """A float32 array from a pgvector value (a Vector object, or already an array)."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


def _record(row: dict[str, Any]) -> ModelVersion:
    fingerprint = row["fingerprint"]
    return ModelVersion(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        kind=row["kind"],
        dim=row["dim"],
        distance=row["distance"],
        params=dict(row["params"] or {}),
        fingerprint=None if fingerprint is None else as_array(fingerprint),
        status=row["status"],
    )


def _one(conn: psycopg.Connection, name: str, params: dict[str, Any]) -> ModelVersion:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query(name), params).fetchone()
    if row is None:
        raise LookupError(f"no model for {params}")
    return _record(row)


def by_id(conn: psycopg.Connection, model_id: int) -> ModelVersion:
    return _one(conn, "model_by_id", {"id": model_id})


def by_spec(conn: psycopg.Connection, spec: str) -> ModelVersion:
    """'name' or 'name@version', resolved by vk.model()."""
    return _one(conn, "model_by_spec", {"spec": spec})


def for_collection(conn: psycopg.Connection, collection: str, spec: str | None = None) -> ModelVersion:
    """The model a collection is searched with: its default, or the one named."""
    return _one(conn, "collection_model", {"collection": collection, "spec": spec})


def probe_text(conn: psycopg.Connection) -> str:
    row = conn.execute(query("probe_text")).fetchone()
    assert row is not None
    return str(row[0])


def record_fingerprint(conn: psycopg.Connection, model_id: int, fingerprint: np.ndarray) -> None:
    conn.execute(query("record_fingerprint"), {"id": model_id, "fingerprint": fingerprint})


def register(
    conn: psycopg.Connection,
    *,
    name: str,
    kind: str,
    dim: int,
    distance: str = "cosine",
    params: dict[str, Any] | None = None,
    fingerprint: np.ndarray | None = None,
) -> ModelVersion:
    """Add the next version of a model name."""
    return _one(
        conn,
        "register_model",
        {
            "name": name,
            "kind": kind,
            "dim": dim,
            "distance": distance,
            "params": Jsonb(params or {}),
            "fingerprint": fingerprint,
        },
    )


def store_trained(
    conn: psycopg.Connection,
    model_id: int,
    *,
    artifact: bytes,
    dim: int,
    params: dict[str, Any],
    metrics: dict[str, Any],
    fingerprint: np.ndarray | None = None,
) -> str:
    """A reserved or registered version is ready: its artifact stored (sha256 recorded in its params),
    its dimension, params, metrics and fingerprint. The artifact's sha256 (hex). Run it in the caller's
    transaction, with what else must land at the same time."""
    sha = artifacts.store(conn, model_id, artifact)
    conn.execute(
        query("model_trained"),
        {
            "id": model_id,
            "dim": dim,
            "params": Jsonb({**params, "artifact_sha256": sha}),
            "metrics": Jsonb(metrics),
            "fingerprint": fingerprint,
        },
    )
    return sha
