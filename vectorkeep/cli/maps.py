"""`map gaps|fill|plot`: a map's gaps, filled with decoded vectors and text, or drawn to a PNG."""

import argparse
from typing import Any

from vectorkeep.app import maps
from vectorkeep.cli.output import emit
from vectorkeep.cli.parsing import Commands, url


def _shown(rows: list[dict[str, Any]], as_json: bool) -> list[dict[str, Any]]:
    """The decoded vector goes to scripts (--json), not to a terminal table."""
    return rows if as_json else [{k: v for k, v in r.items() if k != "vector"} for r in rows]


def _search(args: argparse.Namespace) -> maps.GapSearch:
    return maps.GapSearch(cells=args.cells, min_neighbours=args.min_neighbours)


def cmd_gaps(args: argparse.Namespace) -> int:
    found = maps.find_gaps(url(args), args.model, search=_search(args), fill=args.fill)
    emit(_shown(found.filled, args.json) if args.fill else found.gaps, as_json=args.json)
    if args.fill and not args.json:
        summary = found.summary()
        print(
            f"{summary['filled']} of {summary['gaps']} gaps filled: {summary['in_cell']:.0%} of the texts land back "
            f"in their cell, {summary['distinct_texts']} distinct, mean cosine {summary['mean_cosine']} "
            f"({', '.join(f'{m}: {n}' for m, n in summary['methods'].items())})"
        )
    return 0


def cmd_fill(args: argparse.Namespace) -> int:
    emit(_shown([maps.fill(url(args), args.model, args.x, args.y)], args.json), as_json=args.json)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    drawn = maps.plot(url(args), args.model, args.out, search=_search(args), fill=args.fill)
    print(f"wrote {args.out}: {len(drawn.gaps)} gaps, {len(drawn.filled)} filled")
    return 0


def _model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="the map version, e.g. map@1")


def _gap_options(p: argparse.ArgumentParser) -> None:
    _model(p)
    p.add_argument("--cells", type=int, default=24, help="grid cells a side (default 24)")
    p.add_argument("--min-neighbours", type=int, default=3, help="populated cells around a gap (default 3)")
    p.add_argument("--fill", type=int, default=0, help="decode the first N gaps to text")


def register(commands: Commands) -> None:
    map_help = "A map's gaps (empty regions between rows), filled with decoded vectors and text, or drawn to a PNG."
    _, group = commands.group("map", map_help)

    p = group.add("gaps", cmd_gaps, "A map's gaps; with --fill N the first N decoded to vectors and text.")
    _gap_options(p)

    p = group.add(
        "fill", cmd_fill, "Decode one map coordinate: its vector, the nearest stored text, the recovered text."
    )
    p.add_argument("x", type=float, help="the map coordinate to decode")
    p.add_argument("y", type=float)
    _model(p)

    p = group.add("plot", cmd_plot, "Draw a map's rows, its gaps and the first --fill N gaps decoded, to a PNG.")
    _gap_options(p)
    p.add_argument("--out", default="map.png", help="the PNG to write (default map.png)")
