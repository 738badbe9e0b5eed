"""The SQL examples of the pages a newcomer reads first run, in order, as a reader would run them
in psql: on a fresh database with the sample corpus embedded and a worker answering text queries.
A marker on the line above a block's fence says how it runs: `<!-- doctest: skip: why -->` not at
all, and why; `<!-- doctest: after the jobs -->` once a worker has run the jobs and embedded the rows
the blocks before it queued (a train job, its reembed); `<!-- doctest: refused: SQLSTATE -->` it must
fail with that error (a gate that refuses) and changes nothing.
Pages whose examples are not run yet are listed in NOT_YET with how many they hold, so the debt is
written down and shrinks one page at a time. Shell examples are not run here yet: the README's two
commands are what .ci/run itself runs (tests/test_style.py holds them equal)."""

import re
from pathlib import Path

import psycopg
import pytest

from helpers import running_lane, serve
from vectorkeep.workers.encoder_cache import EncoderCache

ROOT = Path(__file__).resolve().parent.parent
RUN = ["README.md", "docs/quickstart.md", "docs/guides/search.md", "docs/guides/chunks.md", "docs/guides/models.md"]
NOT_YET = {
    # Their placeholders ($vector, :job_id, a table of the reader's) and their trainings (edit search,
    # UMAP, a next-vector model: minutes on 2 cores, with the suite's budget already spent) wait.
    "docs/guides/recovery.md": 1,
    "docs/guides/maps.md": 2,
}
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARK = re.compile(r"^<!-- doctest: (skip: (?P<skip>.+)|(?P<jobs>after the jobs)|refused: (?P<refused>\w{5})) -->$")
AFTER_JOBS = "after the jobs"


def blocks(path: Path) -> list[tuple[int, str, str, str | None]]:
    """(line, language, text, its marker or None) of each fenced block of a page: the marker is
    "skip: why", AFTER_JOBS or "refused: SQLSTATE"."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        mark = _MARK.match(lines[i - 1]) if i > 0 else None
        out.append((i + 1, fence.group(1), "\n".join(lines[i + 1 : end]), mark.group(1) if mark else None))
        i = end + 1
    return out


def sql_examples(page: str) -> list[tuple[int, str, str | None]]:
    """(line, text, marker) of the SQL blocks of a page that run: all but the skipped ones."""
    return [
        (line, text, mark)
        for line, lang, text, mark in blocks(ROOT / page)
        if lang == "sql" and not (mark or "").startswith("skip:")
    ]


@pytest.mark.needs_dblink
@pytest.mark.parametrize("page", RUN)
def test_every_sql_example_of_the_page_runs_in_order(
    page: str, corpus_url: str, encoders: EncoderCache, lane_encoders: EncoderCache
) -> None:
    examples = sql_examples(page)
    assert examples, page
    with running_lane(corpus_url, lane_encoders), psycopg.connect(corpus_url, autocommit=True) as conn:
        for line, text, mark in examples:
            if mark == AFTER_JOBS:
                serve(corpus_url, encoders)
            refused = mark[len("refused: ") :] if mark and mark.startswith("refused: ") else None
            try:
                conn.execute(text.encode())  # the whole block, as psql -f would send it
            except psycopg.Error as exc:
                if refused is not None and exc.sqlstate == refused:
                    continue
                pytest.fail(f"{page}:{line}: the example fails: {exc}\n{text}")
            if refused is not None:
                pytest.fail(f"{page}:{line}: the example should be refused ({refused}) and ran\n{text}")


def test_every_page_is_run_or_says_how_many_examples_wait() -> None:
    pages = sorted(str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
    waiting = {
        page: len(sql_examples(page))
        for page in pages
        if page not in RUN and page != "docs/index.md"  # the README, as the site's front page
    }
    assert {p: n for p, n in waiting.items() if n} == {p: n for p, n in NOT_YET.items() if n}
