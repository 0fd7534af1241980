"""Common names of traded species (`node/data/species.csv`), so that a search
for "pangolin" or "rosewood" finds records that carry the scientific name.
A row names a species, a genus or a family; a record's species takes the
common names of every row its scientific name starts with."""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources


@cache
def _table() -> tuple[tuple[str, tuple[str, ...]], ...]:
    text = (resources.files("node") / "data" / "species.csv").read_text(encoding="utf-8")
    rows = []
    for row in csv.DictReader(text.splitlines()):
        names = tuple(n.strip() for n in row["common_names"].split(";") if n.strip())
        rows.append((row["scientific_name"].strip().casefold(), names))
    return tuple(rows)


@cache
def common_names(scientific_name: str) -> tuple[str, ...]:
    """The common names of `scientific_name` ("Manis javanica" -> "Sunda
    pangolin", "pangolin", ...); () when the table does not know it."""
    wanted = " ".join(scientific_name.split()).casefold()
    out: list[str] = []
    for name, names in _table():
        if wanted == name or wanted.startswith(name + " "):
            out.extend(names)
    return tuple(dict.fromkeys(out))
