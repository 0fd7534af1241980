"""Counts in words: "1 record", "2 records" (issue 12: "1 records", "1 nodes")."""

from __future__ import annotations

import pytest

from node.cli.words import plural


@pytest.mark.parametrize(
    ("n", "word", "many", "said"),
    [
        (0, "record", None, "0 records"),
        (1, "record", None, "1 record"),
        (2, "node", None, "2 nodes"),
        (1, "audience", None, "1 audience"),
        (12345, "seizure", None, "12,345 seizures"),
        (1, "copy", "copies", "1 copy"),
        (3, "copy", "copies", "3 copies"),
    ],
)
def test_plural(n: int, word: str, many: str | None, said: str) -> None:
    assert plural(n, word, many) == said
