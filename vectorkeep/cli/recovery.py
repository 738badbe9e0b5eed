"""`adopt`, `recover`, `evaluate-recovery`: legacy vector tables and text back from vectors."""

import argparse

from vectorkeep.app import adopt, jobs, kinds, recovery
from vectorkeep.cli.jobs import show_job, wait_and_show
from vectorkeep.cli.output import emit
from vectorkeep.cli.parsing import Commands, url
from vectorkeep.cli.progress import JobBars

# Encoders registered from a Hugging Face name or path, not trained here.
ENCODER_KINDS = kinds.names(role="encoder", trainable=False)


def _search(args: argparse.Namespace) -> recovery.InversionSearch:
    return recovery.InversionSearch(steps=args.steps, beam_width=args.beam_width, max_seconds=args.max_seconds)


def cmd_adopt(args: argparse.Namespace) -> int:
    adopted = adopt.adopt(
        url(args),
        args.table,
        pk=args.pk,
        vector=args.vector,
        model=args.model,
        name=args.name,
        encoder=args.encoder,
        kind=args.kind,
    )
    print(f"adopted {args.table} as {adopted.name!r}: its vectors are {adopted.model}")
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    job_id = recovery.recover(
        url(args), args.adopted, method=args.method, reference=args.reference, search=_search(args)
    )
    if not args.wait:
        emit([{"job": job_id, "kind": "recover", "adopted": args.adopted}], as_json=args.json)
        return 0
    return wait_and_show(url(args), job_id, as_json=args.json)


def cmd_recovered(args: argparse.Namespace) -> int:
    rows = recovery.recovered_text(url(args), args.adopted)
    shown = rows if args.json else [{k: v for k, v in r.items() if k != "alternatives"} for r in rows]
    emit(shown, as_json=args.json)
    return 0


def cmd_evaluate_recovery(args: argparse.Namespace) -> int:
    job_id = recovery.evaluate_recovery(
        url(args), args.collection, model=args.model, inverter=args.inverter, rows=args.rows, search=_search(args)
    )
    if not args.wait:
        emit([{"job": job_id, "kind": "evaluate", "collection": args.collection}], as_json=args.json)
        return 0
    with JobBars(quiet=args.json) as bars:
        job = jobs.wait_for_jobs(url(args), job_id, on_progress=bars)[-1]
    if job["status"] != "succeeded":
        return show_job(job, args.json)
    emit(recovery.recovery_scores(job), as_json=args.json)
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "adopt",
        cmd_adopt,
        "Adopt a legacy table of vectors without text as an external model version.",
        json_flag=False,
    )
    p.add_argument("table")
    p.add_argument("--pk", required=True, help="key column")
    p.add_argument("--vector", required=True, help="the vector column")
    p.add_argument("--model", required=True, help="model name for these vectors (a new version of it)")
    p.add_argument("--name", help="name of the adopted table (default: the table name)")
    p.add_argument("--encoder", help="the encoder that made the vectors, if known (hub name or path)")
    p.add_argument("--kind", default="sentence-transformers", choices=ENCODER_KINDS)

    p = commands.add(
        "recover", cmd_recover, "Queue a recover job: text for every row of an adopted table, into vk.recovered."
    )
    p.add_argument("adopted", help="adopted table name")
    p.add_argument(
        "--method",
        default="best",
        choices=recovery.METHODS,
        help="best (default): the best ready inverter beside the nearest stored text, the better kept per row",
    )
    p.add_argument(
        "--reference",
        help="best, nearest: the version whose stored texts to search; an inverter's method: the inverter "
        "(default: the best ready one, proven compatible by fingerprint)",
    )
    _search_options(p)
    p.add_argument("--wait", action="store_true", help="show progress until the job ends")

    p = commands.add(
        "recovered", cmd_recovered, "The recovered text of each row of an adopted table, with its method and cosine."
    )
    p.add_argument("adopted", help="adopted table name")

    p = commands.add(
        "evaluate-recovery",
        cmd_evaluate_recovery,
        "Score text recovery on held-out rows: nearest other stored text (the baseline), an inverter, and best.",
    )
    p.add_argument("--collection", default="documents")
    p.add_argument("--model", help="the vectors' model version (default: the collection's)")
    p.add_argument("--inverter", help="the inverter to evaluate (name@version; default: the best ready one)")
    p.add_argument("--rows", type=int, default=50, help="held-out rows to recover (default 50)")
    _search_options(p)
    p.add_argument("--wait", action="store_true", help="wait and print the scores")


def _search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-seconds", type=float, help="time box a vector (default: the inverter's, 8 s for edit-search)")
    p.add_argument("--steps", type=int, default=1, help="vec2text: correction steps (default 1)")
    p.add_argument("--beam-width", type=int, default=4, help="vec2text: candidates a step (default 4)")
