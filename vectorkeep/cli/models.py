"""`models list|register|activate|retire`: model versions."""

import argparse
import json

from vectorkeep.app import kinds, models
from vectorkeep.cli.output import emit
from vectorkeep.cli.parsing import Commands, key_values, url

# Encoders registered from a Hugging Face name or path, not trained here.
ENCODER_KINDS = kinds.names(role="encoder", trainable=False)


def cmd_list(args: argparse.Namespace) -> int:
    rows = models.list_models(url(args))
    if not args.json:
        for r in rows:
            r["params"] = json.dumps(r["params"])
    emit(rows, as_json=args.json)
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    if args.kind in ("vec2text-inverter", "vec2text-corrector", "sentence-transformers", "hf-mean-pool") and (
        not args.source
    ):
        raise SystemExit(f"error: registering a {args.kind} model needs --source (a Hugging Face name or a path)")
    if args.kind == "vec2text-corrector":
        if not args.for_model:
            raise SystemExit("error: registering a vec2text-corrector needs --for INVERTER@VERSION")
        version = models.register_corrector(
            url(args), args.name, source=args.source, inverter=args.for_model, t5=args.t5
        )
        row = {"model": version.label, "kind": version.kind, "dim": version.dim, "status": version.status}
        emit([{**row, "inverter": version.params["inverter"]}], as_json=args.json)
        return 0
    if args.kind == "vec2text-inverter":
        if not args.for_model:
            raise SystemExit("error: registering a vec2text-inverter needs --for ENCODER@VERSION")
        version = models.register_inverter(url(args), args.name, source=args.source, encoder=args.for_model, t5=args.t5)
        row = {"model": version.label, "kind": version.kind, "dim": version.dim, "status": version.status}
        emit([{**row, "encoder": version.params["encoder"]}], as_json=args.json)
        return 0
    try:
        version = models.register_encoder(
            url(args),
            args.name,
            source=args.source,
            kind=args.kind,
            params=key_values(args.param),
            distance=args.distance,
            storage=args.storage,
        )
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    emit(
        [
            {
                "model": version.label,
                "kind": version.kind,
                "dim": version.dim,
                "storage": args.storage,
                "distance": version.distance,
                "status": version.status,
            }
        ],
        as_json=args.json,
    )
    return 0


def cmd_activate(args: argparse.Namespace) -> int:
    label = models.activate(url(args), args.name, args.collection, key_values(args.min_metric))
    print(f"{label} is now the search model of {args.collection}")
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    removed = models.retire(url(args), args.name, args.collection, confirm=args.yes)
    print(f"retired {args.name}{' from ' + args.collection if args.collection else ''}: {removed} vectors removed")
    return 0


def register(commands: Commands) -> None:
    _, group = commands.group(
        "models",
        "List model versions (the default); register one; activate one for search; retire one.",
        default=cmd_list,
    )
    group.add("list", cmd_list, "List model versions: kind, dimension, status, params.")

    p = group.add(
        "register",
        cmd_register,
        "Register the next version of an external encoder, or a vec2text inverter or corrector.",
    )
    p.add_argument("name", help="the model name")
    p.add_argument("--source", help="Hugging Face name or local path (local and vec2text kinds)")
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a parameter of the kind, e.g. model=text-embedding-3-small for kind openai (repeatable; "
        "vk.model_kinds lists them); never an API key: the worker reads it from api_key_env",
    )
    p.add_argument(
        "--kind",
        default="sentence-transformers",
        choices=[*ENCODER_KINDS, *kinds.names(role="inverter")],
        help="how to load it (vec2text-inverter: a pretrained inverter, vec2text-corrector: a pretrained "
        "corrector, with --for)",
    )
    p.add_argument(
        "--for",
        dest="for_model",
        help="vec2text-inverter: the encoder version it inverts; vec2text-corrector: the vec2text inverter "
        "version it corrects",
    )
    p.add_argument("--t5", help="vec2text inverter or corrector: a local copy of its T5 (default: as its config says)")
    p.add_argument("--distance", default="cosine", choices=["cosine", "l2", "ip"])
    p.add_argument(
        "--storage",
        default="vector",
        choices=["vector", "halfvec"],
        help="an encoder's HNSW index and searches in single (vector) or half precision (halfvec: half the index)",
    )

    p = group.add("activate", cmd_activate, "Make a version a collection's search model, if it passes its gates.")
    p.add_argument("name", help="name@version")
    p.add_argument("--collection", required=True)
    p.add_argument(
        "--min-metric", action="append", metavar="METRIC=MIN", help="a gate, e.g. recall@10=0.9 (repeatable)"
    )

    p = group.add("retire", cmd_retire, "Retire a version (from one collection, or everywhere); delete its vectors.")
    p.add_argument("name", help="name@version")
    p.add_argument("--collection", help="retire from this collection only")
    p.add_argument("--yes", action="store_true", help="delete its vectors (only re-embedding brings them back)")
