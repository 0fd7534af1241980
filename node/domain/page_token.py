"""The page token of a federated search: where the next page starts, for
every source at once, and for each source that stopped early, where it goes
on (`node.searching`).

`after` is the last record shown (every source goes on below it). A source
that examined less than the page covered (a hub whose walk was cut short, or
this node's own store) goes on from its own frontier instead: its later
results may then come on a later page, above records already shown, but a
slow or hostile source never holds back what the others found.

Wire form: base64url of `p3` then `;`-separated parts: the position of
`after` (or empty), then `SOURCE=POSITION` for each source that goes on from
elsewhere, or `SOURCE=-` for one that has given all it has. A token this node
did not make is refused naming `page_token`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import date

from node.config import NODE_ID_RE
from node.domain.search import Position
from node.errors import ValidationError

MAX_TOKEN_CHARS = 1200
MAX_SOURCES = 8
_POSITION = r"([0-9]{4}-[0-9]{2}):([0-9a-f-]{36}):([A-Z0-9][A-Z0-9-]{1,62})"
_POSITION_RE = re.compile(_POSITION)
_SOURCE_RE = re.compile(r"(local|[A-Z0-9][A-Z0-9-]{1,62})=(?:-|" + _POSITION + ")")
DONE = "-"


def _raw(p: Position) -> str:
    return f"{p.event_month.isoformat()[:7]}:{p.record_id}:{p.origin}"


def _position(m: re.Match[str], offset: int = 0) -> Position:
    return Position(date.fromisoformat(m[1 + offset] + "-01"), m[2 + offset], m[3 + offset])


@dataclass(frozen=True)
class PageToken:
    after: Position | None = None
    sources: dict[str, Position | str] = field(default_factory=dict)  # a position, or DONE

    def done(self, source: str) -> bool:
        return self.sources.get(source) == DONE

    def start(self, source: str) -> Position | None:
        """Where `source` goes on from (None: the top): its own position, or `after`."""
        own = self.sources.get(source, self.after)
        return own if isinstance(own, Position) else self.after

    def encode(self) -> str:
        parts = ["p3", _raw(self.after) if self.after else ""]
        parts += [f"{s}={p if isinstance(p, str) else _raw(p)}" for s, p in sorted(self.sources.items())]
        return base64.urlsafe_b64encode(";".join(parts).encode()).decode().rstrip("=")


def parse_page_token(token: str, field_name: str = "page_token") -> PageToken:
    if not token:
        return PageToken()
    refused = ValidationError(field_name, "is not a page token of this search (start again without it)")
    if len(token) > MAX_TOKEN_CHARS or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise refused
    try:
        raw = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)).decode("ascii")
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise refused from e
    parts = raw.split(";")
    if len(parts) < 2 or parts[0] != "p3" or len(parts) > 2 + MAX_SOURCES:
        raise refused
    try:
        after = None
        if parts[1]:
            m = _POSITION_RE.fullmatch(parts[1])
            if m is None:
                raise refused
            after = _position(m)
        sources: dict[str, Position | str] = {}
        for part in parts[2:]:
            s = _SOURCE_RE.fullmatch(part)
            if s is None or (s[1] != "local" and not NODE_ID_RE.fullmatch(s[1])) or s[1] in sources:
                raise refused
            sources[s[1]] = DONE if s[2] is None else _position(s, 1)
    except ValueError as e:
        raise refused from e
    return PageToken(after, sources)
