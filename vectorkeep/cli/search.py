"""`search`, `similar`: the nearest rows to a text, or to a stored row."""

import argparse

from vectorkeep.app import search
from vectorkeep.cli.output import emit
from vectorkeep.cli.parsing import Commands, url


def cmd_search(args: argparse.Namespace) -> int:
    rows = search.search(url(args), args.collection, args.text, k=args.k, model=args.model, chunks=args.chunks)
    emit(rows, as_json=args.json)
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    emit(search.similar(url(args), args.collection, args.pk, k=args.k, model=args.model), as_json=args.json)
    return 0


def register(commands: Commands) -> None:
    p = commands.add("search", cmd_search, "Encode a text and show the nearest rows (vk.search).")
    p.add_argument("text")
    p.add_argument("--chunks", action="store_true", help="show the nearest chunks and their offsets (vk.search_chunks)")
    p.add_argument("--collection", default="documents")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--model", help="name or name@version (default: the collection's)")

    p = commands.add("similar", cmd_similar, "Rows most similar to a stored row (vk.similar).")
    p.add_argument("pk")
    p.add_argument("--collection", default="documents")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--model")
