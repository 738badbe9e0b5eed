"""Model artifacts stored in the database, checked by sha256 on every load."""

import hashlib

import psycopg

from vectorkeep.db.records import ModelVersion
from vectorkeep.sql import query


class ArtifactError(Exception):
    """An artifact is missing, or its bytes are not the ones the model was trained with."""


def store(conn: psycopg.Connection, model_id: int, data: bytes, name: str = "model") -> str:
    """Save an artifact; its sha256 (hex)."""
    row = conn.execute(query("store_artifact"), {"model_id": model_id, "name": name, "data": data}).fetchone()
    assert row is not None
    return str(row[0])


def load(conn: psycopg.Connection, model: ModelVersion, name: str = "model") -> bytes:
    """The artifact's bytes, refused unless they hash to what the model recorded at training."""
    row = conn.execute(query("load_artifact"), {"model_id": model.id, "name": name}).fetchone()
    if row is None:
        raise ArtifactError(f"model {model.label} has no artifact {name!r} in vk.model_artifacts")
    data, stored_sha = bytes(row[0]), str(row[1])
    actual = hashlib.sha256(data).hexdigest()
    expected = model.params.get("artifact_sha256")
    if actual != stored_sha or (expected is not None and actual != expected):
        raise ArtifactError(
            f"artifact {name!r} of {model.label} fails its sha256 check "
            f"(bytes {actual[:12]}…, recorded {str(expected or stored_sha)[:12]}…): refusing to load it"
        )
    return data
