"""Adopt a legacy table of vectors without text as an external model version."""

from dataclasses import dataclass

from vectorkeep.db.connect import connect
from vectorkeep.sql import query


@dataclass(frozen=True)
class Adopted:
    name: str  # the adopted table's name in vk.adopted
    model: str  # the model version of its vectors, name@version


def adopt(
    url: str,
    table: str,
    *,
    pk: str,
    vector: str,
    model: str,
    name: str | None = None,
    encoder: str | None = None,
    kind: str = "sentence-transformers",
) -> Adopted:
    """Adopt a table's vectors as a new version of `model` (vk.adopt).

    With `encoder` (the hub name or path of the encoder that made them), that
    encoder is loaded and its fingerprint recorded for the version, which proves
    (or refutes) that stored corpora share its space.
    """
    # numpy and the encoders: imported when adopting, not with the command line.
    from vectorkeep.db import registry
    from vectorkeep.workers.encoders.registry import load_kind

    with connect(url) as conn:
        row = conn.execute(
            query("adopt"), {"table": table, "pk": pk, "vector": vector, "model": model, "name": name}
        ).fetchone()
        assert row is not None
        adopted, label = row
        if encoder:
            loaded = load_kind(kind, {"source": encoder})
            fingerprint = loaded.encode([registry.probe_text(conn)])[0]
            if loaded.dim != registry.by_spec(conn, label).dim:
                raise ValueError(f"{encoder} makes {loaded.dim}-d vectors; {table} holds another size")
            conn.execute(query("set_encoder"), {"model": label, "fingerprint": fingerprint, "encoder": encoder})
        conn.commit()
    return Adopted(name=str(adopted), model=label)
