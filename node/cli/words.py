"""Words the command line prints about counts: "1 record", "2 records"."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """`n` and the word in the number it takes, with a thousands separator."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
