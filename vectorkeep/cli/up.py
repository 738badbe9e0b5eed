"""`up`: from nothing to a searchable sample corpus, then a running worker."""

import argparse
from typing import Any

from vectorkeep.app import up, worker
from vectorkeep.cli.output import emit
from vectorkeep.cli.parsing import Commands, url, worker_options
from vectorkeep.cli.progress import RowsBar
from vectorkeep.cli.worker import settings_of, stop_on_signals


def cmd_up(args: argparse.Namespace) -> int:
    database_url, settings = url(args), settings_of(args)
    with RowsBar(quiet=args.json) as bar:
        report = up.up(database_url, settings, load_corpus=args.corpus, on_progress=bar)
    if args.json:
        emit([report.as_dict()], as_json=True)
    else:
        _print_report(report.as_dict())
    if args.exit:
        return 0
    print(
        "\nworker running (queue, text queries and jobs); Ctrl-C to stop "
        "(the database keeps running: `vectorkeep down`)"
    )
    worker.serve(database_url, settings, encoders=report.encoders, on_start=stop_on_signals)
    return 0


def _print_report(report: dict[str, Any]) -> None:
    print(f"\nembedded {report['embedded']} rows in this run\n")
    emit(report["status"], as_json=False)
    text = report["sample_query"].replace("'", "''")
    print(f"\nSELECT * FROM vk.search('documents', '{text}', 3);")
    emit(report["search"], as_json=False)
    if report["similar_to"] is not None:
        print(f"\nSELECT * FROM vk.similar('documents', '{report['similar_to']}', 3);")
        emit(report["similar"], as_json=False)
    print(f"\ndatabase: {report['database_url']}")
    if report["psql"]:
        print(f"psql:     {report['psql']}")


def register(commands: Commands) -> None:
    p = commands.add(
        "up",
        cmd_up,
        "Start the embedded database, migrate, load a sample corpus, embed it, "
        "show a search, then keep a worker running until Ctrl-C.",
    )
    p.add_argument("--exit", action="store_true", help="exit once the corpus is embedded")
    p.add_argument("--no-corpus", dest="corpus", action="store_false", help="load no sample corpus")
    worker_options(p)
