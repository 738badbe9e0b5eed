"""`order`, `predict`: ordered collections and a group's next vector."""

import argparse

from vectorkeep.app import sequences
from vectorkeep.cli.output import emit
from vectorkeep.cli.parsing import Commands, url
from vectorkeep.cli.progress import JobBars


def cmd_order(args: argparse.Namespace) -> int:
    sequences.set_order(url(args), args.collection, group=args.group, position=args.position)
    print(f"collection {args.collection!r} is ordered by ({args.group}, {args.position})")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    with JobBars(quiet=args.json) as bars:
        rows = sequences.predict(url(args), args.collection, args.group, model=args.model, k=args.k, on_progress=bars)
    emit(rows, as_json=args.json)
    return 0


def register(commands: Commands) -> None:
    p = commands.add("order", cmd_order, "Declare a collection's rows ordered (groups, position).", json_flag=False)
    p.add_argument("collection")
    p.add_argument("--group", required=True, help="SQL expression naming a row's sequence, e.g. doc_id")
    p.add_argument("--position", required=True, help="SQL expression ordering rows within it, e.g. chunk_no")

    p = commands.add("predict", cmd_predict, "Predict a group's next vector; show the nearest rows.")
    p.add_argument("collection")
    p.add_argument("group", help="the group's key (its group expression's value, as text)")
    p.add_argument("--model", help="a next-vector version (default: the collection's active one)")
    p.add_argument("-k", type=int, default=5)
