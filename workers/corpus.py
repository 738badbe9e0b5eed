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
