"""Who is in which audience: derived from the directory's nodes, never chosen by
hand (pure, no I/O).

- `national:CC`: held by CC's national node; members: it and CC's port nodes.
- `region:R`: held by R's regional hub; members: every node whose region is R
  (national, port, and the hub itself).
- `global`: held by the global hub; members: every node.
- `bilateral:A+B`: for each pair the root configured, as `(A, B)`: held by A's
  national node; members: the national and port nodes of A and B. The name is
  sorted (`bilateral_audience`); the first orientation given wins.
- `node:ID` audiences are implicit (the node alone) and not listed.

Only ACTIVE nodes are members: a revoked node is a member of nothing. A
revoked holder stays the audience's holder, so the key messages it issued
before its revocation (which still verify: its keys are valid up to
`revoked_at`) still open the records it shared; it can issue no new epoch,
since its new envelopes are refused. When the
directory has two candidate holders (it should not: the root admits one
national node per country, one hub per region, one global hub), the lowest
node id holds. The output is sorted by name, members sorted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from federation.audiences import bilateral_audience, national_audience
from gcn.v1 import directory_pb2 as pb

GLOBAL = "global"


def region_audience(region: str) -> str:
    return f"region:{region}"


def _holder(
    nodes: Sequence[pb.DirectoryNode], role: str, *, country: str | None = None, region: str | None = None
) -> str | None:
    """The lowest id among the nodes of `role` (in `country`, in `region`), active ones first."""
    ids = sorted(
        (n.status != pb.NODE_STATUS_ACTIVE, n.id)
        for n in nodes
        if n.role == role
        and (country is None or n.country == country)
        and (region is None or n.region == region)
    )
    return ids[0][1] if ids else None


def _active(nodes: Sequence[pb.DirectoryNode]) -> set[str]:
    return {n.id for n in nodes if n.status == pb.NODE_STATUS_ACTIVE}


def _audience(name: str, holder: str, members: Iterable[str]) -> pb.DirectoryAudience:
    return pb.DirectoryAudience(name=name, holder=holder, members=sorted(set(members)))


def _administration(nodes: Sequence[pb.DirectoryNode], countries: set[str]) -> list[str]:
    return [
        n.id
        for n in nodes
        if n.role in ("national", "port") and n.country in countries and n.status == pb.NODE_STATUS_ACTIVE
    ]


def _national(nodes: Sequence[pb.DirectoryNode]) -> list[pb.DirectoryAudience]:
    out = []
    for country in sorted({n.country for n in nodes if n.role == "national"}):
        holder = _holder(nodes, "national", country=country)
        if holder is not None:
            out.append(_audience(national_audience(country), holder, _administration(nodes, {country})))
    return out


def _regional(nodes: Sequence[pb.DirectoryNode]) -> list[pb.DirectoryAudience]:
    out = []
    for region in sorted({n.region for n in nodes if n.role == "regional" and n.region}):
        holder = _holder(nodes, "regional", region=region)
        if holder is not None:
            members = [n.id for n in nodes if n.region == region and n.id in _active(nodes)]
            out.append(_audience(region_audience(region), holder, members))
    return out


def _global(nodes: Sequence[pb.DirectoryNode]) -> list[pb.DirectoryAudience]:
    holder = _holder(nodes, "global")
    return [] if holder is None else [_audience(GLOBAL, holder, sorted(_active(nodes)))]


def _bilateral(
    nodes: Sequence[pb.DirectoryNode], pairs: Iterable[tuple[str, str]]
) -> list[pb.DirectoryAudience]:
    out: dict[str, pb.DirectoryAudience] = {}
    for a, b in pairs:
        name = bilateral_audience(a, b)
        if a == b or name in out:
            continue
        holder = _holder(nodes, "national", country=a)
        if holder is not None:
            out[name] = _audience(name, holder, _administration(nodes, {a, b}))
    return list(out.values())


def derive_audiences(
    nodes: Sequence[pb.DirectoryNode], bilateral: Iterable[tuple[str, str]] = ()
) -> list[pb.DirectoryAudience]:
    """Every listed audience of a directory with these nodes and bilateral pairs."""
    audiences = [*_national(nodes), *_regional(nodes), *_global(nodes), *_bilateral(nodes, bilateral)]
    return sorted(audiences, key=lambda a: a.name)
