"""Cutting a row's text into chunks, each embedded and stored with its offsets.

A collection's `chunking` setting (vk.set_chunking) picks the method:

- ``none``: the whole text is one chunk (the encoder may truncate it; the
  vector row records that);
- ``tokens``: windows of `size` tokens of the encoder's own tokenizer, each
  starting `overlap` tokens before the previous one ended;
- ``sentences``: whole sentences packed up to `size` tokens (a sentence longer
  than that is cut by tokens);
- ``markdown``: sections split at headings, each packed by sentences.

Offsets are character offsets into the source text (Python str indices, the
same as PostgreSQL's substr positions minus one), so a chunk's text is always
``text[start:end]``. Chunks come from a generator that tokenizes one window of
the text at a time: a 10 MB row never has all its tokens in memory at once.
"""

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

METHODS = ("none", "tokens", "sentences", "markdown")
# Characters tokenized at once: a few chunks' worth, never the whole text.
WINDOW_CHARS = 20_000
DEFAULT_SIZE = 256
_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_HEADING = re.compile(r"^#{1,6}\s", re.MULTILINE)

Spans = Callable[[str], list[tuple[int, int]]]


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Chunking:
    method: str = "none"
    size: int | None = None  # tokens; None: the encoder's window
    overlap: int = 0

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> "Chunking":
        value = value or {}
        return cls(str(value.get("method", "none")), value.get("size"), int(value.get("overlap") or 0))


def word_spans(text: str) -> list[tuple[int, int]]:
    """Whitespace-separated words: the tokens of encoders without a tokenizer of their own."""
    return [m.span() for m in _WORD.finditer(text)]


def encoder_spans(encoder: object) -> tuple[Spans, int]:
    """The encoder's token spans and its window in tokens (words and 256 when it has none)."""
    spans = getattr(encoder, "token_spans", None)
    window = getattr(encoder, "window", None)
    return (spans if spans is not None else word_spans), int(window or DEFAULT_SIZE)


def _window_end(text: str, start: int, hi: int, chars: int) -> int:
    """About `chars` characters from start, cut after whitespace so that no word is split."""
    end = min(hi, start + chars)
    if end < hi:
        cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
        if cut > start:
            end = cut + 1
    return end


def _token_chunks(text: str, lo: int, hi: int, spans: Spans, size: int, overlap: int) -> Iterator[tuple[int, int]]:
    """(start, end) of runs of `size` tokens over text[lo:hi], each sharing `overlap` with the last.

    The text is tokenized one window at a time; a chunk that runs past the
    window starts the next window.
    """
    step = size - overlap
    pos, chars = lo, WINDOW_CHARS
    while pos < hi:
        window_end = _window_end(text, pos, hi, chars)
        final = window_end >= hi
        tokens = [(pos + a, pos + b) for a, b in spans(text[pos:window_end]) if b > a]
        if not tokens:
            return
        i = 0
        while True:
            group = tokens[i : i + size]
            if len(group) < size and not final:
                break
            yield group[0][0], group[-1][1]
            if final and i + size >= len(tokens):
                return
            i += step
        if i == 0:
            chars *= 2  # not one whole chunk in this window: read a wider one
            continue
        pos, chars = tokens[i][0], WINDOW_CHARS


def _pieces(text: str, lo: int, hi: int, pattern: re.Pattern[str]) -> Iterator[tuple[int, int]]:
    """text[lo:hi] cut where pattern matches (the separator goes with the piece before it)."""
    start = lo
    for m in pattern.finditer(text, lo, hi):
        if m.end() > start and m.start() > start:
            yield start, m.start()
            start = m.end()
    if start < hi:
        yield start, hi


def _sentence_chunks(text: str, lo: int, hi: int, spans: Spans, size: int) -> Iterator[tuple[int, int]]:
    """Whole sentences packed up to size tokens; a longer sentence is cut by tokens."""
    current: tuple[int, int] | None = None
    used = 0
    for s, e in _pieces(text, lo, hi, _SENTENCE_END):
        if not text[s:e].strip():
            continue
        n = len(spans(text[s:e]))
        if n > size:
            if current:
                yield current
                current, used = None, 0
            yield from _token_chunks(text, s, e, spans, size, 0)
            continue
        if current and used + n > size:
            yield current
            current, used = None, 0
        current = (current[0], e) if current else (s, e)
        used += n
    if current:
        yield current


def _heading_sections(text: str) -> Iterator[tuple[int, int]]:
    starts = [m.start() for m in _HEADING.finditer(text)]
    bounds = [0, *[s for s in starts if s > 0], len(text)]
    for s, e in itertools.pairwise(bounds):
        if s < e:
            yield s, e


def chunks(text: str, chunking: Chunking, spans: Spans, window: int) -> Iterator[Chunk]:
    """The chunks of one text, in order; blank stretches make none."""
    size = int(chunking.size or window)
    if size < 1 or not 0 <= chunking.overlap < size:
        raise ValueError(f"chunk size {size} and overlap {chunking.overlap}: need 0 <= overlap < size")
    if chunking.method == "none":
        # The text exactly as stored, surrounding whitespace included.
        if text.strip():
            yield Chunk(0, 0, len(text), text)
        return
    if chunking.method == "tokens":
        ranges: Iterator[tuple[int, int]] = _token_chunks(text, 0, len(text), spans, size, chunking.overlap)
    elif chunking.method == "sentences":
        ranges = _sentence_chunks(text, 0, len(text), spans, size)
    elif chunking.method == "markdown":
        ranges = (r for s, e in _heading_sections(text) for r in _sentence_chunks(text, s, e, spans, size))
    else:
        raise ValueError(f"unknown chunking method {chunking.method!r}; use one of {', '.join(METHODS)}")
    index = 0
    for start, end in ranges:
        # Offsets without the surrounding whitespace: the chunk is what was embedded.
        piece = text[start:end]
        stripped = piece.strip()
        if not stripped:
            continue
        start += len(piece) - len(piece.lstrip())
        end = start + len(stripped)
        yield Chunk(index, start, end, text[start:end])
        index += 1
