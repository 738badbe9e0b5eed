"""A small real sample corpus for `vectorkeep up`: the topic help of the Python
documentation that ships with Python (pydoc_data.topics), split into paragraphs.

Licence: Python Software Foundation License (PSF-2.0), as Python's docs.
"""

from collections.abc import Iterator

SOURCE = "pydoc_data.topics"
LICENCE = "PSF-2.0"


def paragraphs(min_chars: int = 120, max_chars: int = 1500) -> Iterator[tuple[str, str]]:
    """(topic, paragraph) pairs of readable length, in a stable order."""
    from pydoc_data.topics import topics

    seen: set[str] = set()  # several topics share paragraphs
    for topic in sorted(topics):
        for block in topics[topic].split("\n\n"):
            text = " ".join(block.split())
            if min_chars <= len(text) <= max_chars and text not in seen:
                seen.add(text)
                yield topic, text


def sentences(min_words: int = 5, max_words: int = 32) -> Iterator[str]:
    """The paragraphs' sentences of min_words to max_words words, each once, in a stable order."""
    import re

    seen: set[str] = set()
    for _, paragraph in paragraphs():
        for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
            if min_words <= len(sentence.split()) <= max_words and sentence not in seen:
                seen.add(sentence)
                yield sentence


# Importing these has effects beyond defining things (a browser, a window, a poem).
_NOISY_MODULES = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "__hello__", "__phello__"}


def docstring_lines(min_words: int = 4, max_words: int = 32) -> Iterator[str]:
    """First lines of the docstrings of the standard library's public functions and classes: short one-line
    texts of another kind than the paragraphs, each once, in a stable order (module and name order)."""
    import contextlib
    import importlib
    import inspect
    import io
    import sys
    import warnings

    seen: set[str] = set()
    for name in sorted(sys.stdlib_module_names - _NOISY_MODULES):
        if name.startswith("_"):
            continue
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            try:
                module = importlib.import_module(name)
            except Exception:  # platform-specific or optional modules
                continue
            members = sorted(vars(module).items())
        for _, member in members:
            if not (inspect.isfunction(member) or inspect.isclass(member)):
                continue
            doc = member.__doc__
            if not isinstance(doc, str) or not doc.strip():
                continue
            line = doc.strip().split("\n")[0].strip()
            if min_words <= len(line.split()) <= max_words and line not in seen:
                seen.add(line)
                yield line
