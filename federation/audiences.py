"""Audience names: who may read an envelope.

node:KE-MBA       only the origin node itself (TLP:RED never leaves it)
national:KE       an administration: its national node and its ports
bilateral:KE+VN   two administrations (sorted, so one name per pair)
region:ESA        a RINEX region, held by its regional hub
global            every member of the federation, held by the global hub
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COUNTRY = r"[A-Z]{2}"
_NODE = r"[A-Z0-9][A-Z0-9-]{1,62}"
_PATTERNS = {
    "node": re.compile(rf"node:({_NODE})"),
    "national": re.compile(rf"national:({_COUNTRY})"),
    "bilateral": re.compile(rf"bilateral:({_COUNTRY})\+({_COUNTRY})"),
    "region": re.compile(r"region:([A-Z]{2,8})"),
    "global": re.compile(r"global"),
}


class AudienceError(ValueError):
    pass


@dataclass(frozen=True)
class Audience:
    kind: str
    name: str  # the full audience string
    parts: tuple[str, ...]

    def __str__(self) -> str:
        return self.name


def parse_audience(name: str) -> Audience:
    for kind, pattern in _PATTERNS.items():
        m = pattern.fullmatch(name)  # fullmatch: no trailing newline slips through
        if m:
            parts = m.groups()
            if kind == "bilateral" and (parts[0] >= parts[1]):
                raise AudienceError(
                    f"bilateral audience {name!r} must name two different countries in order "
                    f"(bilateral:{min(parts)}+{max(parts)})"
                )
            return Audience(kind, name, tuple(parts))
    raise AudienceError(
        f"audience {name!r} is not one of node:ID, national:CC, bilateral:CC+CC, region:NAME, global"
    )


def node_audience(node_id: str) -> str:
    return f"node:{node_id}"


def national_audience(country: str) -> str:
    return f"national:{country}"


def bilateral_audience(a: str, b: str) -> str:
    x, y = sorted((a, b))
    return f"bilateral:{x}+{y}"
