"""The examples of the pages a newcomer reads run, in order, as a reader would run them: SQL blocks
as psql would send them, shell blocks' `vectorkeep` commands through the command line (in this
process: a new Python per line would prove nothing more). A page starts on a fresh database with
the sample corpus embedded and a worker answering text queries; a worker serving the queue and the
jobs starts at the page's first `--wait` or `after the jobs` marker, as the reader's `vectorkeep up`
or `vectorkeep worker` would be running by then.

A marker on the line above a block's fence says how it runs: `<!-- doctest: skip: why -->` not at
all, and why; `<!-- doctest: after the jobs -->` once the worker has run every job and embedded
every row the blocks before it queued; `<!-- doctest: refused: SQLSTATE -->` (SQL) it must fail
with that error (a gate that refuses) and changes nothing.

Every `vectorkeep` command of every page, skipped blocks included, must parse with the command
line's own parser, so a renamed command or option fails here even where the example cannot run
(a provider's API key, a Citus cluster, a wheel being installed).

Pages whose examples are not run yet are listed in NOT_YET with how many they hold, so the debt is
written down. The README's two commands are what .ci/run itself runs (tests/test_style.py holds them
equal), so their blocks are skipped here."""

import re
import shlex
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

import psycopg
import pytest

from helpers import FAST_RETRY, running_lane
from vectorkeep.cli import build_parser, main
from vectorkeep.workers.encoder_cache import EncoderCache
from vectorkeep.workers.service import Service
from vectorkeep.workers.worker import WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
RUN = [
    "README.md",
    "docs/quickstart.md",
    "docs/guides/search.md",
    "docs/guides/chunks.md",
    "docs/guides/models.md",
    "docs/guides/recovery.md",
    "docs/guides/maps.md",
]
NOT_YET: dict[str, int] = {}
SHELL = ("sh", "bash")
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARK = re.compile(r"^<!-- doctest: (skip: (?P<skip>.+)|(?P<jobs>after the jobs)|refused: (?P<refused>\w{5})) -->$")
AFTER_JOBS = "after the jobs"
_VECTORKEEP = re.compile(r"^(\S*/)?vectorkeep$")
_ASSIGNMENT = re.compile(r"^\w+=")


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


def examples(page: str) -> list[tuple[int, str, str, str | None]]:
    """(line, language, text, marker) of the SQL and shell blocks of a page that run: all but the skipped ones."""
    return [
        (line, lang, text, mark)
        for line, lang, text, mark in blocks(ROOT / page)
        if lang in ("sql", *SHELL) and not (mark or "").startswith("skip:")
    ]


def commands(text: str) -> list[list[str]]:
    """The commands of a shell block, split as the shell would: continued lines joined, comments
    dropped, `&&` chains cut into their commands, leading VAR=value assignments dropped."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            command, words = words[:cut], words[cut + 1 :]
            while command and _ASSIGNMENT.match(command[0]):
                command = command[1:]
            if command:
                out.append(command)
    return out


def vectorkeep_commands(page: str) -> list[tuple[int, list[str]]]:
    """(block line, arguments) of every `vectorkeep` command of a page's shell blocks, skipped ones included."""
    return [
        (line, command[1:])
        for line, lang, text, _ in blocks(ROOT / page)
        if lang in SHELL
        for command in commands(text)
        if _VECTORKEEP.match(command[0])
    ]


class Reader:
    """One reader's session over a page: psql, the command line, and a worker started when needed."""

    def __init__(self, url: str, encoders: EncoderCache) -> None:
        self.url, self.encoders = url, encoders
        self.service: Service | None = None
        self.thread: threading.Thread | None = None
        self.conn = psycopg.connect(url, autocommit=True)

    def start_worker(self) -> None:
        if self.service is None:
            settings = WorkerSettings(retry=FAST_RETRY)
            self.service = Service(self.url, settings, encoders=self.encoders, text_queries=False)
            self.thread = threading.Thread(target=self.service.run, daemon=True)
            self.thread.start()

    def wait_for_the_jobs(self, timeout: float = 300) -> None:
        """Until no job is queued or running and no queued row is ready (the worker has done what was asked)."""
        self.start_worker()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = self.conn.execute(
                "SELECT (SELECT count(*) FROM vk.jobs WHERE status IN ('queued', 'running'))"
                " + (SELECT count(*) FROM vk.queue WHERE NOT dead AND run_after <= now())"
            ).fetchone()
            if busy == (0,):
                return
            time.sleep(0.2)
        pytest.fail(f"the worker did not finish the jobs within {timeout:.0f} s")

    def close(self) -> None:
        if self.service is not None and self.thread is not None:
            self.service.stop()
            self.thread.join(timeout=60)
            assert not self.thread.is_alive()
        self.conn.close()


@contextmanager
def reader(url: str, encoders: EncoderCache) -> Iterator[Reader]:
    session = Reader(url, encoders)
    try:
        yield session
    finally:
        session.close()


@pytest.mark.needs_dblink
@pytest.mark.parametrize("page", RUN)
def test_every_example_of_the_page_runs_in_order(
    page: str,
    corpus_url: str,
    encoders: EncoderCache,
    lane_encoders: EncoderCache,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # files a command writes (map.png) land there
    page_examples = examples(page)
    assert page_examples, page
    with running_lane(corpus_url, lane_encoders), reader(corpus_url, encoders) as you:
        for line, lang, text, mark in page_examples:
            if mark == AFTER_JOBS:
                you.wait_for_the_jobs()
            if lang in SHELL:
                run_shell(page, line, text, you)
            else:
                run_sql(page, line, text, mark, you.conn)


def run_sql(page: str, line: int, text: str, mark: str | None, conn: psycopg.Connection) -> None:
    refused = mark[len("refused: ") :] if mark and mark.startswith("refused: ") else None
    try:
        conn.execute(text.encode())  # the whole block, as psql -f would send it
    except psycopg.Error as exc:
        if refused is not None and exc.sqlstate == refused:
            return
        pytest.fail(f"{page}:{line}: the example fails: {exc}\n{text}")
    if refused is not None:
        pytest.fail(f"{page}:{line}: the example should be refused ({refused}) and ran\n{text}")


def run_shell(page: str, line: int, text: str, you: Reader) -> None:
    for command in commands(text):
        if not _VECTORKEEP.match(command[0]):
            pytest.fail(f"{page}:{line}: only vectorkeep commands run here; mark the block skip, with why: {command}")
        if "--wait" in command or command[1:3] == ["jobs", "wait"]:
            you.start_worker()
        out, err = StringIO(), StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                rc = main(["--database-url", you.url, *command[1:]])
            except SystemExit as exc:  # --help
                rc = exc.code if isinstance(exc.code, int) else 1
        if rc != 0:
            pytest.fail(f"{page}:{line}: `{shlex.join(command)}` exits {rc}:\n{err.getvalue()}{out.getvalue()}")


@pytest.mark.parametrize("page", [p for p in PAGES if vectorkeep_commands(p)])
def test_every_vectorkeep_command_of_the_page_parses(page: str) -> None:
    parser = build_parser()
    for line, args in vectorkeep_commands(page):
        out, err = StringIO(), StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                parser.parse_args(args)
            except SystemExit as exc:
                if exc.code != 0:  # 0: --help
                    pytest.fail(f"{page}:{line}: `vectorkeep {shlex.join(args)}` does not parse:\n{err.getvalue()}")


def test_every_page_is_run_or_says_how_many_examples_wait() -> None:
    waiting = {
        page: len(examples(page))
        for page in PAGES
        if page not in RUN and page != "docs/index.md"  # the README, as the site's front page
    }
    assert {p: n for p, n in waiting.items() if n} == {p: n for p, n in NOT_YET.items() if n}
