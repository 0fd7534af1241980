"""Version vectors: per stream (origin, audience), the highest contiguous seq held.

Pure functions over plain dicts; the wire form is `gcn.v1.VersionVector`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gcn.v1 import sync_pb2

Stream = tuple[str, str]
Vector = dict[Stream, int]


def from_proto(vector: sync_pb2.VersionVector) -> Vector:
    out: Vector = {}
    for head in vector.heads:
        key = (head.origin, head.audience)
        out[key] = max(out.get(key, 0), int(head.seq))
    return out


def to_proto(heads: Iterable[tuple[str, str, int, bytes]]) -> sync_pb2.VersionVector:
    return sync_pb2.VersionVector(
        heads=[sync_pb2.StreamHead(origin=o, audience=a, seq=q, hash=h) for o, a, q, h in heads]
    )


def lacking(mine: Mapping[Stream, int], theirs: Mapping[Stream, int]) -> dict[Stream, int]:
    """For each stream where I hold more than they do: the seq they hold (send after it)."""
    return {s: theirs.get(s, 0) for s, seq in mine.items() if seq > theirs.get(s, 0)}


def behind(mine: Mapping[Stream, int], theirs: Mapping[Stream, int]) -> int:
    """How many envelopes `theirs` lacks of `mine` (counting by contiguous heads)."""
    return sum(seq - theirs.get(s, 0) for s, seq in mine.items() if seq > theirs.get(s, 0))
