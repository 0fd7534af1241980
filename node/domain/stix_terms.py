"""The fixed names of the STIX 2.1 export (docs/exports.md): the UUIDv5 namespace
of its ids, gcn's identity and extension definition, the OASIS extensions it
uses (Incident Core, TLP 2.0), the TLP marking definitions, the `x_gcn_*`
properties and the patterns of alert subjects. Changing any of them changes
what every earlier export meant: add, never rename.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from gcn.v1 import records_pb2 as rec

# UUIDv5 namespace of every id below; never change it (it would change every exported id).
NAMESPACE = uuid.UUID("9e5eb173-1f3f-4c70-9b00-2466560e9b9c")
GCN_IDENTITY_ID = "identity--9c54e6a7-7075-4eaa-8c8f-80d6a8470cdd"
GCN_EXTENSION_ID = "extension-definition--5513ddb3-813a-47b5-ba05-e924c7cac68b"
INCIDENT_CORE_ID = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
# The fixed creation time of the objects that are not records (ours, and the node identities).
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
TLP2_CREATED = datetime(2022, 10, 1, tzinfo=UTC)

# The OASIS TLP 2.0 marking definitions (cti-stix-common-objects, tlp-2.0): id and level.
TLP2_MARKINGS: Mapping[int, tuple[str, str]] = {
    rec.TLP_CLEAR: ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "clear"),
    rec.TLP_GREEN: ("marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "green"),
    rec.TLP_AMBER: ("marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", "amber"),
    rec.TLP_AMBER_STRICT: ("marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", "amber+strict"),
    rec.TLP_RED: ("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", "red"),
}

# Every custom property an exported object may carry (docs/exports.md says what each holds).
GCN_PROPERTIES = (
    "x_gcn_record_id",
    "x_gcn_origin",
    "x_gcn_audience",
    "x_gcn_view",
    "x_gcn_status",
    "x_gcn_superseded_by",
    "x_gcn_corrects",
    "x_gcn_correction_reason",
    "x_gcn_origin_revoked",
    "x_gcn_incident_date",
    "x_gcn_direction",
    "x_gcn_detection_method",
    "x_gcn_operation_code",
    "x_gcn_concealment",
    "x_gcn_notes",
    "x_gcn_goods",
    "x_gcn_transport_mode",
    "x_gcn_vessel_imo",
    "x_gcn_vessel_name",
    "x_gcn_flight",
    "x_gcn_vehicle_registration",
    "x_gcn_container_numbers",
    "x_gcn_bill_of_lading",
    "x_gcn_air_waybill",
    "x_gcn_permits",
    "x_gcn_subjects",
    "x_gcn_indicators",
    "x_gcn_commodity",
    "x_gcn_priority",
    "x_gcn_recommended_action",
    "x_gcn_valid_until",
    "x_gcn_node_id",
    "x_gcn_place_role",
    "x_gcn_locode",
    "x_gcn_sequence",
    "x_gcn_country",
    "x_gcn_identifier",
    "x_gcn_personal_data",
)

# An alert subject → the STIX pattern comparison it becomes (custom observable types).
SUBJECT_PATTERNS: Mapping[int, str] = {
    rec.SUBJECT_KIND_VESSEL: "[x-gcn-vessel:imo_number = '{}']",
    rec.SUBJECT_KIND_CONTAINER: "[x-gcn-container:number = '{}']",
    rec.SUBJECT_KIND_COMPANY: "[x-gcn-company:name = '{}']",
    rec.SUBJECT_KIND_PERSON: "[x-gcn-person:name = '{}']",
    rec.SUBJECT_KIND_PERMIT_SERIES: "[x-gcn-permit:number LIKE '{}%']",
    rec.SUBJECT_KIND_ROUTE: "[x-gcn-route:countries = '{}']",
    rec.SUBJECT_KIND_FLIGHT: "[x-gcn-flight:designator = '{}']",
}
PARTY_CLASS: Mapping[int, str] = {rec.PARTY_KIND_PERSON: "individual", rec.PARTY_KIND_COMPANY: "organization"}


def stix_id(kind: str, *parts: str) -> str:
    """`kind--UUIDv5(NAMESPACE, parts joined by '/')`: the same parts, the same id."""
    return f"{kind}--{uuid.uuid5(NAMESPACE, '/'.join(parts))}"
