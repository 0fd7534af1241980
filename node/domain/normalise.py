"""How names and free text become search words, the same at index and at query.

Customs officers type names as their keyboards and habits allow: "Societe"
for "Société", "Sirket" for "Şirket", "Strasse" for "Straße", "Ostergaard"
for "Østergaard". Both sides are folded to plain lower-case ASCII letters and
digits: case folded, accents stripped (NFKD, then combining marks dropped),
the letters NFKD leaves whole (ß ø æ œ ł đ þ, dotless i ...) written as a Latin
keyboard writes them. Words are runs of letters and digits; punctuation
separates them ("O'Neil" -> "o", "neil"; "Al-Amin" -> "al", "amin").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

# Letters NFKD does not decompose, as officers type them on a Latin keyboard.
_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "ss",
        "ø": "o",
        "Ø": "o",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "ı": "i",  # noqa: RUF001
        "ħ": "h",
        "Ħ": "h",
        "ŧ": "t",
        "Ŧ": "t",
        "ŋ": "ng",
        "Ŋ": "ng",
        "ĸ": "k",
        "ŀ": "l",
        "Ŀ": "l",
    }
)
_WORD = re.compile(r"[a-z0-9]+")
MAX_WORD = 64  # longer runs are cut (a word this long is a code, not a name)
MAX_WORDS = 200  # words indexed per text field of a record


def fold(text: str) -> str:
    """Lower-case ASCII: "Société Générale" -> "societe generale"."""
    text = text.translate(_LETTERS)
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.translate(_LETTERS).casefold()


def words(text: str, limit: int = MAX_WORDS) -> list[str]:
    """The distinct search words of `text`, in order, at most `limit`."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(fold(text)):
        seen.setdefault(match[0][:MAX_WORD], None)
        if len(seen) >= limit:
            break
    return list(seen)


def iter_words(*texts: str) -> Iterator[str]:
    for text in texts:
        yield from words(text)


def compact(text: str) -> str:
    """An identifier as one word: spaces and punctuation removed, upper-cased
    ("csqu 305438-3" -> "CSQU3054383", "KQ 310" -> "KQ310")."""
    return re.sub(r"[^A-Za-z0-9]", "", fold(text)).upper()
