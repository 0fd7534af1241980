"""Sharing policy: the origin decides where each new record goes, and in what view.

A policy maps a record to a set of `Share`s, each `(audience, view)`; each share
becomes one envelope. This module holds the decision only (pure, no I/O).

`NationalPolicy` is the built-in policy of a node that has not configured
sharing: TLP:RED stays on the node (`node:<id>`), everything else goes, in full,
to the node's own administration (`national:<CC>`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from federation.audiences import national_audience, node_audience
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec


@dataclass(frozen=True, order=True)
class Share:
    audience: str
    view: epb.View.ValueType


class Policy(Protocol):
    def shares(self, kind: epb.RecordKind.ValueType, tlp: rec.TLP.ValueType) -> list[Share]: ...


@dataclass(frozen=True)
class NationalPolicy:
    node_id: str
    country: str

    def shares(self, kind: epb.RecordKind.ValueType, tlp: rec.TLP.ValueType) -> list[Share]:
        if tlp == rec.TLP_RED:
            return [Share(node_audience(self.node_id), epb.VIEW_FULL)]
        return [Share(national_audience(self.country), epb.VIEW_FULL)]

    def own_audiences(self) -> list[str]:
        """The audiences whose keys this node holds and must create at set-up."""
        return [node_audience(self.node_id), national_audience(self.country)]
