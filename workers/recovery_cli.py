"""The command line of recovery: adopt a legacy vector table, recover its text."""

import argparse
from typing import Any

from psycopg.types.json import Jsonb

from vectorkeep.db import artifacts, registry
from vectorkeep.db.connect import connect
from vectorkeep.db.records import ModelVersion
from vectorkeep.sql import query
from vectorkeep.workers.encoders.registry import load_kind
from vectorkeep.workers.jobs_cli import _show, wait_for_job
from vectorkeep.workers.output import emit


def register_inverter(url: str, args: argparse.Namespace) -> ModelVersion:
    """A pretrained vec2text inverter as a model version tied to its encoder, its weights stored."""
    from vectorkeep.workers.inversion import pretrained
    from vectorkeep.workers.inversion.model import to_artifact
    from vectorkeep.workers.trainers.vec2text import encoder_source

    if not args.for_model:
        raise SystemExit("error: registering a vec2text-inverter needs --for ENCODER@VERSION")
    with connect(url) as conn:
        encoder = registry.by_spec(conn, args.for_model)
        source = encoder_source(encoder)
        model, params = pretrained.load(args.source, source, encoder.dim, args.t5)
        recorded = {**params, "encoder_model_id": encoder.id, "encoder": encoder.label, "encoder_source": source}
        version = registry.register(conn, name=args.name, kind="vec2text-inverter", dim=encoder.dim, params=recorded)
        sha = artifacts.store(conn, version.id, to_artifact(model))
        conn.execute(
            query("model_trained"),
            {
                "id": version.id,
                "dim": encoder.dim,
                "params": Jsonb({**recorded, "artifact_sha256": sha}),
                "metrics": Jsonb({}),
                "fingerprint": None,
            },
        )
        conn.commit()
        return registry.by_id(conn, version.id)


def cmd_adopt(url: str, args: argparse.Namespace) -> int:
    with connect(url) as conn:
        row = conn.execute(
            query("adopt"),
            {"table": args.table, "pk": args.pk, "vector": args.vector, "model": args.model, "name": args.name},
        ).fetchone()
        assert row is not None
        adopted, model_id = row
        label = registry.by_id(conn, model_id).label
        if args.encoder:
            # The user says which encoder made these vectors: load it and record
            # its fingerprint, which proves (or refutes) that stored corpora share its space.
            encoder = load_kind(args.kind, {"source": args.encoder})
            fingerprint = encoder.encode([registry.probe_text(conn)])[0]
            if encoder.dim != registry.by_spec(conn, label).dim:
                raise SystemExit(
                    f"error: {args.encoder} makes {encoder.dim}-d vectors; {args.table} holds another size"
                )
            conn.execute(query("set_encoder"), {"model": label, "fingerprint": fingerprint, "encoder": args.encoder})
        conn.commit()
    print(f"adopted {args.table} as {adopted!r}: its vectors are {label}")
    return 0


def cmd_recover(url: str, args: argparse.Namespace) -> int:
    with connect(url, autocommit=True) as conn:
        row = conn.execute(
            query("recover_adopted"),
            {
                "adopted": args.adopted,
                "method": args.method,
                "reference": args.reference,
                "params": Jsonb({"steps": args.steps, "beam_width": args.beam_width, "max_seconds": args.max_seconds}),
            },
        ).fetchone()
    assert row is not None
    if not args.wait:
        emit([{"job": int(row[0]), "kind": "recover", "adopted": args.adopted}], as_json=args.json)
        return 0
    return _show(wait_for_job(url, int(row[0]), quiet=args.json), args.json)


def cmd_evaluate_recovery(url: str, args: argparse.Namespace) -> int:
    params = {"rows": args.rows, "steps": args.steps, "beam_width": args.beam_width, "max_seconds": args.max_seconds}
    with connect(url, autocommit=True) as conn:
        row = conn.execute(
            query("evaluate_recovery"),
            {"collection": args.collection, "model": args.model, "inverter": args.inverter, "params": Jsonb(params)},
        ).fetchone()
    assert row is not None
    job_id = int(row[0])
    if not args.wait:
        emit([{"job": job_id, "kind": "evaluate", "collection": args.collection}], as_json=args.json)
        return 0
    job = wait_for_job(url, job_id, quiet=args.json)
    if job["status"] != "succeeded":
        return _show(job, args.json)
    results = job["metrics"]
    table = [
        {"method": method, **{k: v for k, v in results[method].items()}}
        for method in ("nearest", "vec2text")
        if method in results
    ]
    emit(table, as_json=args.json)
    return 0


def add_commands(add: Any, url_of: Any) -> None:
    p = add(
        "adopt",
        lambda a: cmd_adopt(url_of(a), a),
        "Adopt a legacy table of vectors without text as an external model version.",
        json_flag=False,
    )
    p.add_argument("table")
    p.add_argument("--pk", required=True, help="key column")
    p.add_argument("--vector", required=True, help="the vector column")
    p.add_argument("--model", required=True, help="model name for these vectors (a new version of it)")
    p.add_argument("--name", help="name of the adopted table (default: the table name)")
    p.add_argument("--encoder", help="the encoder that made the vectors, if known (hub name or path)")
    p.add_argument("--kind", default="sentence-transformers", choices=["sentence-transformers", "hf-mean-pool"])

    p = add(
        "recover",
        lambda a: cmd_recover(url_of(a), a),
        "Queue a recover job: text for every row of an adopted table, into vk.recovered.",
    )
    p.add_argument("adopted", help="adopted table name")
    p.add_argument("--method", default="nearest", choices=["nearest", "vec2text"])
    p.add_argument(
        "--reference",
        help="nearest: the version whose stored texts to search; vec2text: the inverter "
        "(default: one proven compatible by fingerprint)",
    )
    p.add_argument("--steps", type=int, default=1, help="vec2text: correction steps (default 1)")
    p.add_argument("--beam-width", type=int, default=4, help="vec2text: candidates per step (default 4)")
    p.add_argument("--max-seconds", type=float, default=10.0, help="vec2text: time box per vector (default 10)")
    p.add_argument("--wait", action="store_true", help="show progress until the job ends")

    p = add(
        "evaluate-recovery",
        lambda a: cmd_evaluate_recovery(url_of(a), a),
        "Score text recovery on held-out rows: nearest stored text (the baseline) and vec2text, side by side.",
    )
    p.add_argument("--collection", default="documents")
    p.add_argument("--model", help="the vectors' model version (default: the collection's)")
    p.add_argument("--inverter", help="a vec2text inverter to evaluate (name@version)")
    p.add_argument("--rows", type=int, default=50, help="held-out rows to recover (default 50)")
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--beam-width", type=int, default=4)
    p.add_argument("--max-seconds", type=float, default=10.0)
    p.add_argument("--wait", action="store_true", help="wait and print the scores")
