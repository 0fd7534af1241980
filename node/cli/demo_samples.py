"""The demo's records: what officers at each node record, in protobuf JSON
(what `gcn seizure import` and `gcn alert add --file` read).

Cases typical of CEN seizures, across operations DEMETER and CASSINI: ivory
and pangolin scales leaving Mombasa, HCFC-22 declared as refrigeration parts
in Dar es Salaam, rosewood declared as other sawn wood (HS 4407.99) in Hai
Phong, plastic waste in Laem Chabang, pangolin scales in a passenger's bags at
Nairobi (TLP:AMBER: it stays in Kenya), and, while the port is cut off, e-waste
shipped by a company with an accented name. Names, numbers and companies are
invented; container and IMO numbers carry valid check digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any


@dataclass(frozen=True)
class Sample:
    key: str  # the marker a rerun finds: recorded once, never twice
    origin: str  # the node whose officer records it
    kind: str  # "seizure" or "alert"
    label: str  # how the report names it
    tlp: str
    phase: str  # "first", or "cut" (recorded at the port while its link is down)
    body: dict[str, Any]


def _q(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": f"UNIT_{unit}"}


def samples(today: date) -> list[Sample]:
    def day(days_ago: int) -> str:
        return (today - timedelta(days=days_ago)).isoformat()

    ivory = {
        "incident_date": day(9),
        "place": {"port_locode": "KEMBA", "country": "KE", "description": "Kilindini container terminal"},
        "direction": "DIRECTION_EXPORT",
        "detection_method": "DETECTION_METHOD_NII_SCAN",
        "goods": [
            {
                "commodity": "COMMODITY_WILDLIFE",
                "description": "raw elephant ivory tusks",
                "hs_code": "050710",
                "species": "Loxodonta africana",
                "cites_appendix": "CITES_APPENDIX_I",
                "quantity": _q(452.5, "KG"),
            },
            {
                "commodity": "COMMODITY_WILDLIFE",
                "description": "pangolin scales in sacks",
                "hs_code": "050800",
                "species": "Smutsia gigantea",
                "cites_appendix": "CITES_APPENDIX_I",
                "quantity": _q(1100, "KG"),
            },
        ],
        "concealment": "false wall behind sacks of sesame seed",
        "conveyance": {
            "mode": "TRANSPORT_MODE_SEA",
            "vessel_imo": "9074729",
            "vessel_name": "MSC ALTAIR",
            "container_numbers": ["CSQU3054383"],
        },
        "route": {
            "origin_country": "UG",
            "export_country": "KE",
            "transit_countries": ["MY"],
            "destination_country": "VN",
        },
        "parties": [
            {
                "kind": "PARTY_KIND_COMPANY",
                "role": "PARTY_ROLE_SHIPPER",
                "name": "Sesame Traders Ltd",
                "country": "KE",
            },
            {
                "kind": "PARTY_KIND_PERSON",
                "role": "PARTY_ROLE_BROKER",
                "name": "John Doe Mwangi",
                "country": "KE",
            },
        ],
        "operation_code": "DEMETER",
        "tlp": "TLP_GREEN",
        "notes": "Scanner image showed an organic density anomaly; shipper registered three weeks before.",
    }
    pangolin_air = {
        "incident_date": day(7),
        "place": {"port_locode": "KENBO", "country": "KE", "description": "JKIA terminal 1A"},
        "direction": "DIRECTION_EXPORT",
        "detection_method": "DETECTION_METHOD_CANINE",
        "goods": [
            {
                "commodity": "COMMODITY_WILDLIFE",
                "description": "pangolin scales wrapped in clothing",
                "hs_code": "050800",
                "species": "Phataginus tricuspis",
                "cites_appendix": "CITES_APPENDIX_I",
                "quantity": _q(38, "KG"),
            }
        ],
        "conveyance": {"mode": "TRANSPORT_MODE_AIR", "flight": "KQ886"},
        "route": {"origin_country": "CD", "export_country": "KE", "destination_country": "CN"},
        "parties": [
            {
                "kind": "PARTY_KIND_PERSON",
                "role": "PARTY_ROLE_PASSENGER",
                "name": "Jean-Pierre Mbuyi",
                "country": "CD",
            }
        ],
        "operation_code": "CASSINI",
        "tlp": "TLP_AMBER",
    }
    hcfc = {
        "incident_date": day(6),
        "place": {"port_locode": "TZDAR", "country": "TZ"},
        "direction": "DIRECTION_IMPORT",
        "detection_method": "DETECTION_METHOD_RISK_PROFILE",
        "goods": [
            {
                "commodity": "COMMODITY_ODS_HFC",
                "description": "HCFC-22 in disposable cylinders declared as refrigeration parts",
                "hs_code": "290371",
                "ods_substance": "HCFC-22",
                "quantity": _q(6800, "KG"),
            }
        ],
        "conveyance": {"mode": "TRANSPORT_MODE_SEA", "container_numbers": ["MSKU7012349"]},
        "route": {"origin_country": "CN", "export_country": "CN", "destination_country": "TZ"},
        "parties": [
            {
                "kind": "PARTY_KIND_COMPANY",
                "role": "PARTY_ROLE_CONSIGNEE",
                "name": "Baridi Cooling Ltd",
                "country": "TZ",
            }
        ],
        "operation_code": "DEMETER",
        "tlp": "TLP_GREEN",
    }
    rosewood = {
        "incident_date": day(4),
        "place": {"port_locode": "VNHPH", "country": "VN"},
        "direction": "DIRECTION_IMPORT",
        "detection_method": "DETECTION_METHOD_DOCUMENTARY_CHECK",
        "goods": [
            {
                "commodity": "COMMODITY_TIMBER",
                "description": "rosewood logs declared as other sawn wood",
                "hs_code": "440799",
                "species": "Dalbergia spp.",
                "cites_appendix": "CITES_APPENDIX_II",
                "quantity": _q(84, "CUBIC_METRE"),
            }
        ],
        "conveyance": {"mode": "TRANSPORT_MODE_SEA", "container_numbers": ["TGHU8012345"]},
        "documents": {
            "permits": [
                {
                    "type": "PERMIT_TYPE_CITES",
                    "number": "MG-2026-00412",
                    "issuing_country": "MG",
                    "forged": True,
                }
            ]
        },
        "route": {
            "origin_country": "MG",
            "export_country": "MG",
            "transit_countries": ["KE"],
            "destination_country": "VN",
        },
        "operation_code": "CASSINI",
        "tlp": "TLP_GREEN",
    }
    plastic = {
        "incident_date": day(3),
        "place": {"port_locode": "THLCH", "country": "TH"},
        "direction": "DIRECTION_IMPORT",
        "detection_method": "DETECTION_METHOD_PHYSICAL_EXAMINATION",
        "goods": [
            {
                "commodity": "COMMODITY_PLASTIC_WASTE",
                "description": "mixed plastic scrap declared as raw material",
                "hs_code": "391590",
                "basel_code": "Y48",
                "quantity": _q(21, "TONNE"),
            }
        ],
        "conveyance": {"mode": "TRANSPORT_MODE_SEA", "container_numbers": ["HLXU3006513"]},
        "route": {"origin_country": "DE", "export_country": "NL", "destination_country": "TH"},
        "operation_code": "DEMETER",
        "tlp": "TLP_GREEN",
    }
    ewaste = {
        "incident_date": day(0),
        "place": {"port_locode": "KEMBA", "country": "KE"},
        "direction": "DIRECTION_EXPORT",
        "detection_method": "DETECTION_METHOD_PHYSICAL_EXAMINATION",
        "goods": [
            {
                "commodity": "COMMODITY_E_WASTE",
                "description": "used CRT monitors and circuit boards declared as second-hand goods",
                "hs_code": "854900",
                "basel_code": "A1180",
                "quantity": _q(18, "TONNE"),
            }
        ],
        "conveyance": {"mode": "TRANSPORT_MODE_SEA", "container_numbers": ["MSCU4622101"]},
        "route": {"origin_country": "KE", "export_country": "KE", "destination_country": "GH"},
        "parties": [
            {
                "kind": "PARTY_KIND_COMPANY",
                "role": "PARTY_ROLE_SHIPPER",
                "name": "Société Générale d'Exportation SARL",
                "country": "KE",
            }
        ],
        "operation_code": "DEMETER",
        "tlp": "TLP_GREEN",
    }
    vessel_alert = {
        "title": "Vessel suspected of carrying ivory concealed in sesame seed",
        "subjects": [
            {"kind": "SUBJECT_KIND_VESSEL", "value": "9074729"},
            {"kind": "SUBJECT_KIND_ROUTE", "value": "KE>MY>VN"},
        ],
        "indicators": ["shipper registered less than 30 days before shipment"],
        "commodity": "COMMODITY_WILDLIFE",
        "priority": "PRIORITY_HIGH",
        "valid_until": (today + timedelta(days=60)).isoformat(),
        "recommended_action": "Scan all containers of the named shipper; notify RILO A/P on a hit.",
        "operation_code": "DEMETER",
        "tlp": "TLP_GREEN",
    }
    return [
        Sample("ke-mba-ivory", "KE-MBA", "seizure", "ivory + pangolin scales", "green", "first", ivory),
        Sample("ke-pangolin", "KE", "seizure", "pangolin scales (air)", "amber", "first", pangolin_air),
        Sample("tz-hcfc", "TZ", "seizure", "HCFC-22 cylinders", "green", "first", hcfc),
        Sample("vn-rosewood", "VN", "seizure", "rosewood as HS 4407.99", "green", "first", rosewood),
        Sample("th-plastic", "TH", "seizure", "plastic waste", "green", "first", plastic),
        Sample("vn-alert", "VN", "alert", "alert: vessel 9074729", "green", "first", vessel_alert),
        Sample("ke-mba-ewaste", "KE-MBA", "seizure", "e-waste (while cut)", "green", "cut", ewaste),
    ]
