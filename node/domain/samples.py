"""Realistic sample records: the demo, the tests and the benchmarks use them.

The scenarios follow cases typical of CEN environmental seizures: ivory and
pangolin scales leaving East African ports, HCFC-22 cylinders declared as
"refrigeration parts", rosewood logs declared as "other wood", e-waste declared
as second-hand goods. Names, numbers and companies are invented; container and
IMO numbers carry valid check digits.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from stdnum import imo as std_imo
from stdnum import iso6346

from gcn.v1 import records_pb2 as rec


def _q(value: float, unit: rec.Unit.ValueType) -> rec.Quantity:
    return rec.Quantity(value=value, unit=unit)


def ivory_seizure(incident: date) -> rec.Seizure:
    return rec.Seizure(
        incident_date=incident.isoformat(),
        place=rec.Place(port_locode="KEMBA", country="KE", description="Kilindini container terminal"),
        direction=rec.DIRECTION_EXPORT,
        detection_method=rec.DETECTION_METHOD_NII_SCAN,
        goods=[
            rec.GoodsItem(
                commodity=rec.COMMODITY_WILDLIFE,
                description="raw elephant ivory tusks",
                hs_code="050710",
                species="Loxodonta africana",
                cites_appendix=rec.CITES_APPENDIX_I,
                quantity=_q(452.5, rec.UNIT_KG),
                declared_value=rec.Money(amount=1200, currency="USD"),
            ),
            rec.GoodsItem(
                commodity=rec.COMMODITY_WILDLIFE,
                description="pangolin scales in sacks",
                hs_code="050800",
                species="Smutsia gigantea",
                cites_appendix=rec.CITES_APPENDIX_I,
                quantity=_q(1100, rec.UNIT_KG),
            ),
        ],
        concealment="false wall behind sacks of sesame seed",
        conveyance=rec.Conveyance(
            mode=rec.TRANSPORT_MODE_SEA,
            vessel_imo="9074729",
            vessel_name="MSC ALTAIR",
            container_numbers=["CSQU3054383"],
        ),
        documents=rec.Documents(bill_of_lading="MEDUKE123456"),
        route=rec.Route(
            origin_country="UG", export_country="KE", transit_countries=["MY"], destination_country="VN"
        ),
        parties=[
            rec.Party(
                kind=rec.PARTY_KIND_COMPANY,
                role=rec.PARTY_ROLE_SHIPPER,
                name="Sesame Traders Ltd",
                country="KE",
            ),
            rec.Party(
                kind=rec.PARTY_KIND_PERSON,
                role=rec.PARTY_ROLE_BROKER,
                name="John Doe Mwangi",
                country="KE",
                identifier="A1234567",
            ),
        ],
        operation_code="DEMETER",
        tlp=rec.TLP_AMBER,
        notes="Scanner image showed organic density anomaly; shipper registered three weeks before.",
    )


def hcfc_seizure(incident: date) -> rec.Seizure:
    return rec.Seizure(
        incident_date=incident.isoformat(),
        place=rec.Place(port_locode="NLRTM", country="NL"),
        direction=rec.DIRECTION_IMPORT,
        detection_method=rec.DETECTION_METHOD_RISK_PROFILE,
        goods=[
            rec.GoodsItem(
                commodity=rec.COMMODITY_ODS_HFC,
                description="HCFC-22 in disposable cylinders declared as refrigeration parts",
                hs_code="290371",
                ods_substance="HCFC-22",
                quantity=_q(13600, rec.UNIT_KG),
                declared_value=rec.Money(amount=20400, currency="EUR"),
            )
        ],
        conveyance=rec.Conveyance(mode=rec.TRANSPORT_MODE_SEA, container_numbers=["MSKU7012349"]),
        route=rec.Route(origin_country="CN", export_country="CN", destination_country="NL"),
        parties=[
            rec.Party(
                kind=rec.PARTY_KIND_COMPANY, role=rec.PARTY_ROLE_CONSIGNEE, name="Cool Parts BV", country="NL"
            )
        ],
        operation_code="CASSINI",
        tlp=rec.TLP_GREEN,
    )


def rosewood_seizure(incident: date) -> rec.Seizure:
    return rec.Seizure(
        incident_date=incident.isoformat(),
        place=rec.Place(port_locode="VNHPH", country="VN"),
        direction=rec.DIRECTION_IMPORT,
        detection_method=rec.DETECTION_METHOD_DOCUMENTARY_CHECK,
        goods=[
            rec.GoodsItem(
                commodity=rec.COMMODITY_TIMBER,
                description="rosewood logs declared as other wood",
                hs_code="440399",
                species="Dalbergia spp.",
                cites_appendix=rec.CITES_APPENDIX_II,
                quantity=_q(84, rec.UNIT_CUBIC_METRE),
            )
        ],
        documents=rec.Documents(
            permits=[
                rec.Permit(
                    type=rec.PERMIT_TYPE_CITES, number="MG-2026-00412", issuing_country="MG", forged=True
                )
            ]
        ),
        route=rec.Route(origin_country="MG", export_country="MG", destination_country="VN"),
        tlp=rec.TLP_AMBER,
    )


def vessel_alert(valid_until: date) -> rec.Alert:
    return rec.Alert(
        title="Vessel suspected of carrying ivory concealed in sesame seed consignments",
        subjects=[
            rec.AlertSubject(kind=rec.SUBJECT_KIND_VESSEL, value="9074729"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_ROUTE, value="KE>MY>VN"),
        ],
        indicators=[
            "shipper registered less than 30 days before shipment",
            "declared sesame seed with density anomaly on NII scan",
        ],
        commodity=rec.COMMODITY_WILDLIFE,
        priority=rec.PRIORITY_HIGH,
        valid_until=valid_until.isoformat(),
        recommended_action="Scan all containers of the named shipper; notify RILO ESA on a hit.",
        operation_code="DEMETER",
        tlp=rec.TLP_AMBER,
    )


def permit_alert(valid_until: date) -> rec.Alert:
    return rec.Alert(
        title="Forged CITES permit series for Dalbergia from Madagascar",
        subjects=[rec.AlertSubject(kind=rec.SUBJECT_KIND_PERMIT_SERIES, value="MG-2026-004")],
        indicators=["permit numbers MG-2026-004xx not issued by the Malagasy management authority"],
        commodity=rec.COMMODITY_TIMBER,
        priority=rec.PRIORITY_URGENT,
        valid_until=valid_until.isoformat(),
        recommended_action="Detain consignments presenting these permits; verify with eCITES.",
        tlp=rec.TLP_GREEN,
    )


def sample_seizures(today: date) -> list[rec.Seizure]:
    return [
        ivory_seizure(today - timedelta(days=9)),
        hcfc_seizure(today - timedelta(days=4)),
        rosewood_seizure(today - timedelta(days=2)),
    ]


def sample_alerts(today: date) -> list[rec.Alert]:
    return [vessel_alert(today + timedelta(days=60)), permit_alert(today + timedelta(days=180))]


_OWNERS = ("MSK", "CSQ", "MSC", "CMA", "HLX", "OOL", "EGH", "TGH")
_HS = ("050710", "050800", "440399", "440799", "290371", "854900", "391590", "030389")


def random_container(rng: random.Random) -> str:
    base = f"{rng.choice(_OWNERS)}U{rng.randrange(10**6):06d}"
    return base + iso6346.calc_check_digit(base)


def random_imo(rng: random.Random) -> str:
    base = f"{rng.randrange(900000, 999999)}"
    return base + std_imo.calc_check_digit(base)


def random_seizure(rng: random.Random, today: date) -> rec.Seizure:
    """A plausible seizure with varied fields (for bulk and load tests)."""
    s = rng.choice((ivory_seizure, hcfc_seizure, rosewood_seizure))(
        today - timedelta(days=rng.randrange(3650))
    )
    s.conveyance.container_numbers[:] = [random_container(rng) for _ in range(rng.randint(1, 3))]
    if s.conveyance.mode == rec.TRANSPORT_MODE_SEA:
        s.conveyance.vessel_imo = random_imo(rng)
    s.goods[0].hs_code = rng.choice(
        [h for h in _HS if h[:2] == s.goods[0].hs_code[:2]] or [s.goods[0].hs_code]
    )
    s.goods[0].quantity.value = round(rng.uniform(1, 5000), 1)
    return s


def write_json(directory: str, today: date) -> list[str]:
    """Write the sample seizures and alerts as JSON files (for the demo and the CLI)."""
    from pathlib import Path

    from google.protobuf import json_format

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, records in (("seizure", sample_seizures(today)), ("alert", sample_alerts(today))):
        for i, record in enumerate(records, 1):
            path = out / f"{kind}-{i}.json"
            path.write_text(json_format.MessageToJson(record) + "\n")
            written.append(str(path))
    return written


if __name__ == "__main__":
    import sys

    for name in write_json(sys.argv[1] if len(sys.argv) > 1 else "samples", date.today()):
        print(name)
