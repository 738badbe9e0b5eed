"""The SQL examples of the pages a newcomer reads first run, in order, as a reader would run them
in psql: on a fresh database with the sample corpus embedded and a worker answering text queries.
A block marked `<!-- doctest: skip: why -->` on the line above its fence is not run, and says why.
Pages whose examples are not run yet are listed in NOT_YET with how many they hold, so the debt is
written down and shrinks one page at a time. Shell examples are not run here yet: the README's two
commands are what .ci/run itself runs (tests/test_style.py holds them equal)."""

import re
from pathlib import Path

import psycopg
import pytest

from helpers import running_lane
from vectorkeep.workers.encoder_cache import EncoderCache

ROOT = Path(__file__).resolve().parent.parent
RUN = ["README.md", "docs/quickstart.md", "docs/guides/search.md", "docs/guides/chunks.md"]
NOT_YET = {
    # A train job's example goes on after a worker ran it (its version exists, its gates pass or not):
    # the runner needs a job runner and a way to mark an expected refusal.
    "docs/guides/models.md": 1,
    "docs/guides/recovery.md": 1,
    "docs/guides/maps.md": 2,
}
_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"^<!-- doctest: skip: (.+) -->$")


def blocks(path: Path) -> list[tuple[int, str, str, str | None]]:
    """(line, language, text, why it is skipped or None) of each fenced block of a page."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        skip = _SKIP.match(lines[i - 1]) if i > 0 else None
        out.append((i + 1, fence.group(1), "\n".join(lines[i + 1 : end]), skip.group(1) if skip else None))
        i = end + 1
    return out


def sql_examples(page: str) -> list[tuple[int, str]]:
    return [(line, text) for line, lang, text, why in blocks(ROOT / page) if lang == "sql" and why is None]


@pytest.mark.needs_dblink
@pytest.mark.parametrize("page", RUN)
def test_every_sql_example_of_the_page_runs_in_order(page: str, corpus_url: str, lane_encoders: EncoderCache) -> None:
    examples = sql_examples(page)
    assert examples, page
    with running_lane(corpus_url, lane_encoders), psycopg.connect(corpus_url, autocommit=True) as conn:
        for line, text in examples:
            try:
                conn.execute(text.encode())  # the whole block, as psql -f would send it
            except psycopg.Error as exc:
                pytest.fail(f"{page}:{line}: the example fails: {exc}\n{text}")


def test_every_page_is_run_or_says_how_many_examples_wait() -> None:
    pages = sorted(str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
    waiting = {
        page: len(sql_examples(page))
        for page in pages
        if page not in RUN and page != "docs/index.md"  # the README, as the site's front page
    }
    assert {p: n for p, n in waiting.items() if n} == {p: n for p, n in NOT_YET.items() if n}
