"""The command line starts fast: parsing its arguments, and a search a worker encodes, import no heavy library.

Which modules are loaded, not how long it takes (a timing depends on the machine): each
check runs in a fresh interpreter and reads its sys.modules. numpy and the encoders
(torch, transformers, sentence_transformers) are imported only when `vectorkeep search`
encodes the text itself, for want of a worker (tests/test_text_queries.py).
"""

import json
import os
import subprocess
import sys

import psycopg
import pytest

from helpers import drain, running_lane
from vectorkeep.workers.encoder_cache import EncoderCache

HEAVY = ("torch", "transformers", "sentence_transformers", "gensim", "sqlalchemy", "alembic", "numpy", "tqdm", "mlflow")

# argv: parse|run, then the command line. Prints, as JSON on its last line, the heavy modules
# loaded once the arguments are parsed (run: once the command ran, too).
PROBE = f"""
import json, sys
from vectorkeep import cli
args = cli.build_parser().parse_args(sys.argv[2:])
if sys.argv[1] == "run":
    assert args.func(args) == 0
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})))
"""


def heavy_modules(mode: str, *argv: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode, *argv],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "how do I catch an exception", "-k", "3", "--collection", "documents"],
        ["search", "eggs", "--hybrid", "--json"],
        ["similar", "1"],
        ["status"],
        ["jobs", "wait", "1"],
        ["evaluate-recovery", "--wait"],
        ["worker", "--until-idle"],
    ],
)
def test_parsing_the_arguments_imports_no_heavy_library(argv: list[str]) -> None:
    assert heavy_modules("parse", *argv) == []


@pytest.mark.needs_dblink
def test_a_search_a_worker_encodes_imports_no_heavy_library(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache, lane_encoders: EncoderCache
) -> None:
    conn.execute(
        "INSERT INTO vk.documents (body) VALUES ('Whisk flour, eggs and milk; fry in butter.'),"
        " ('Collect your income statements and file before April.')"
    )
    drain(db_url, encoders)
    with running_lane(db_url, lane_encoders):
        argv = ["search", "how to cook eggs", "-k", "1", "--json"]
        assert heavy_modules("run", *argv, env={"VECTORKEEP_DATABASE_URL": db_url}) == []
