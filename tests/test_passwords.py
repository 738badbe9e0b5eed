"""No command prints or logs the database password: not in its output, its errors (libpq quotes the
URL, or the piece of it that does not parse), its log lines, nor `vectorkeep url`. And every command
takes SQLAlchemy's postgresql+psycopg:// form of the URL."""

import argparse
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import cli
from vectorkeep.cli import build_parser
from vectorkeep.db.settings import redact, without_password

PASSWORD = "S3cretPW_do_not_print"
REFUSED = f"postgresql+psycopg://someone:{PASSWORD}@127.0.0.1:1/nothing"  # nothing listens on port 1
BAD_ESCAPE = f"postgresql://someone:{PASSWORD}%zz@127.0.0.1:1/nothing"  # libpq: invalid percent-encoded token
BAD_URLS = {"refused": REFUSED, "bad-escape": BAD_ESCAPE}

# Every command that connects, with arguments that get it as far as connecting.
CONNECTING = {
    "up": "up --exit --no-corpus",
    "url": "url",
    "migrate": "migrate",
    "doctor": "doctor",
    "distribute": "distribute",
    "schema check": "schema check",
    "schema record": "schema record",
    "health": "health --timeout 2",
    "attach": "attach t --pk id --text body",
    "chunking": "chunking documents none",
    "status": "status",
    "search": "search hello",
    "similar": "similar 1",
    "models list": "models list",
    "models register": "models register m --kind vec2text-inverter --source /nonexistent --for minilm@1",
    "models activate": "models activate m@1 --collection documents",
    "models retire": "models retire m@1",
    "train": "train m --kind tfidf --collection documents",
    "reembed": "reembed --model m@1",
    "jobs list": "jobs list",
    "jobs show": "jobs show 1",
    "jobs wait": "jobs wait 1",
    "jobs cancel": "jobs cancel 1",
    "jobs export-mlflow": "jobs export-mlflow",
    "adopt": "adopt t --pk id --vector v --model m@1",
    "recover": "recover t",
    "recovered": "recovered t",
    "evaluate-recovery": "evaluate-recovery",
    "map gaps": "map gaps --model m@1",
    "map fill": "map fill 0 0 --model m@1",
    "map plot": "map plot --model m@1",
    "order": "order c --group g --position p",
    "predict": "predict c g",
}
# `worker` connects too; it retries an unreachable server until stopped (test below). `schema release`
# refuses a released head before it connects (and would write sql/ files otherwise).
NOT_HERE = {"down", "schema release", "schema show", "worker"}


def commands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[str]:
    """Every command the parser runs ('models list'), groups' sub-commands included."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix
    for sub in subs:
        for name, child in sub.choices.items():
            yield from commands(child, f"{prefix} {name}".strip())


def run(url: str, args: list[str]) -> tuple[str, int, str]:
    """A command's exit status and all that it prints: in a process of its own, since what is checked is
    every line it prints (a warning too, which pytest would catch in this process), and side by side."""
    done = cli(url, *args, process=True, timeout=120)
    return " ".join(args), done.returncode, done.stdout + done.stderr


def test_the_list_holds_every_command() -> None:
    assert set(commands(build_parser())) - NOT_HERE == set(CONNECTING)


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_no_command_prints_the_password(url: str) -> None:
    # Side by side: each run is mostly the interpreter starting.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda args: run(url, args), [args.split() for args in CONNECTING.values()]))
    leaks = [command for command, _, output in results if PASSWORD in output]
    assert not leaks, f"the password is printed by: {leaks}"
    for command, returncode, output in results:
        if command == "url":
            # No password at all: psql takes it from PGPASSWORD or ~/.pgpass, or asks.
            assert returncode == 0 and "://someone@127.0.0.1:1/" in output, output
            continue
        # It got as far as connecting, and said why it could not.
        why = "Connection refused" if url == REFUSED else 'invalid percent-encoded token: "***"'
        assert returncode == 1 and why in output, (command, output)


def test_a_url_given_on_the_command_line_is_hidden_too() -> None:
    _, returncode, output = run("", ["--database-url", BAD_ESCAPE, "status"])
    assert returncode == 1 and PASSWORD not in output and 'invalid percent-encoded token: "***"' in output, output


def worker_output(url: str, seconds: float = 60) -> tuple[int, str]:
    """`vectorkeep worker`'s exit status and output, stopped with SIGTERM once it has logged a
    reconnect (it retries an unreachable server until stopped), or killed after `seconds`."""
    env = {**os.environ, "VECTORKEEP_DATABASE_URL": url}
    process = subprocess.Popen(
        [sys.executable, "-m", "vectorkeep", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = threading.Timer(seconds, process.kill)
    deadline.start()
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "reconnecting" in line:
                process.send_signal(signal.SIGTERM)
                break
        rest, _ = process.communicate(timeout=seconds)
    finally:
        deadline.cancel()
        process.kill()
    return process.returncode, "".join(lines) + rest


def test_a_worker_that_cannot_connect_logs_no_password() -> None:
    returncode, output = worker_output(REFUSED)
    assert "reconnecting" in output and "Connection refused" in output, output
    assert PASSWORD not in output
    assert returncode == 0, output  # stopped by SIGTERM, as asked


def test_a_worker_given_a_url_that_does_not_parse_stops_at_once() -> None:
    returncode, output = worker_output(BAD_ESCAPE)
    assert returncode == 1 and 'error: invalid percent-encoded token: "***"' in output, output
    assert PASSWORD not in output and "reconnecting" not in output


def test_every_command_takes_the_sqlalchemy_form(db_url: str) -> None:
    assert db_url.startswith("postgresql://")
    url = db_url.replace("postgresql://", "postgresql+psycopg://", 1)
    for args in (["migrate"], ["status"], ["health"], ["worker", "--until-idle", "--no-jobs"]):
        done = cli(url, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    # As libpq and psql take it, and without a password (on a server that has one).
    assert cli(url, "url").stdout.strip() == without_password(db_url)


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql+psycopg://u:p%40w@h:5/db?x=1", "postgresql+psycopg://u:***@h:5/db?x=1"),
        ('bad URI: "postgres://u:pw@[::1/db"', 'bad URI: "postgres://u:***@[::1/db"'),
        ("host=h password=pw user=u", "host=h password=*** user=u"),
        ("host=h password='p w\\'x' user=u", "host=h password=*** user=u"),
        (
            "postgresql://h/db?user=u&password=pw&sslmode=require",
            "postgresql://h/db?user=u&password=***&sslmode=require",
        ),
        # The embedded server's URL has an empty password: nothing to hide, psql takes it as printed.
        ("postgresql://postgres:@127.0.0.1:5432/postgres", "postgresql://postgres:@127.0.0.1:5432/postgres"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_redact(text: str, hidden: str) -> None:
    assert redact(text) == hidden


def test_redact_hides_a_urls_password_wherever_it_is_quoted() -> None:
    # libpq names the token that does not parse, which may be the password alone.
    assert redact('invalid percent-encoded token: "pw%zz"', "postgresql://u:pw%zz@h/db") == (
        'invalid percent-encoded token: "***"'
    )
    assert redact("the password is p@ss", "postgresql://u:p%40ss@h/db") == "the password is ***"
