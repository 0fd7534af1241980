"""Nodes, records and policy texts the policy tests start from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from federation.policy import (
    PolicyNode,
    RulePolicy,
    Share,
    load_policy,
    parse_policy,
)
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from node.domain import samples

KE = PolicyNode("KE", "KE", "ESA", "national")


@dataclass(frozen=True)
class FixedPolicy:
    """A sharing policy that sends every record to the same shares (tests set
    it on a node's `records.policy` to steer one record where they want it)."""

    share_list: list[Share]

    def shares(self, kind: int, body: object) -> list[Share]:
        return list(self.share_list)


FULL, REDACTED, STATISTICAL = epb.VIEW_FULL, epb.VIEW_REDACTED, epb.VIEW_STATISTICAL
SEIZURE, ALERT, CORRECTION = epb.RECORD_KIND_SEIZURE, epb.RECORD_KIND_ALERT, epb.RECORD_KIND_CORRECTION
DAY = date(2026, 11, 1)


def seizure(tlp: rec.TLP.ValueType = rec.TLP_GREEN) -> rec.Seizure:
    s = samples.ivory_seizure(DAY)
    s.tlp = tlp
    return s


def alert(tlp: rec.TLP.ValueType = rec.TLP_GREEN) -> rec.Alert:
    a = samples.vessel_alert(DAY)
    a.tlp = tlp
    return a


def body_of(kind: str, tlp: rec.TLP.ValueType) -> tuple[epb.RecordKind.ValueType, rec.RecordBody]:
    target = "3f1c1a8e-4d7e-4a43-9d0b-2f1f3b1c0a11"
    if kind == "seizure":
        return SEIZURE, rec.RecordBody(seizure=seizure(tlp))
    if kind == "alert":
        return ALERT, rec.RecordBody(alert=alert(tlp))
    if kind == "corrected seizure":
        c = rec.Correction(target_record_id=target, reason="weight", seizure=seizure(tlp))
    else:
        c = rec.Correction(target_record_id=target, reason="priority", alert=alert(tlp))
    return CORRECTION, rec.RecordBody(correction=c)


def policy(text: str, node: PolicyNode = KE) -> RulePolicy:
    return parse_policy(text, node=node, source="test.toml")


def default(
    node_id: str = "KE", country: str = "KE", region: str = "ESA", role: str = "national"
) -> RulePolicy:
    return load_policy(None, node_id=node_id, country=country, region=region, role=role)


HOME = [Share("node:KE", FULL)]  # what keeps a record on its node
