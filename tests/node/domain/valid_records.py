"""Valid records the validation tests start from (and then break one field of)."""

from __future__ import annotations

from datetime import date

from gcn.v1 import records_pb2 as rec

TODAY = date(2026, 11, 28)


# --- ----------------------------------------------------------------


def ivory_seizure() -> rec.Seizure:
    """Raw ivory found by scanner in an export container at Mombasa."""
    return rec.Seizure(
        incident_date=" 2026-11-20 ",
        place=rec.Place(port_locode="KE MBA", country="ke", description="Kilindini CFS 3"),
        direction=rec.DIRECTION_EXPORT,
        detection_method=rec.DETECTION_METHOD_NII_SCAN,
        goods=[
            rec.GoodsItem(
                commodity=rec.COMMODITY_WILDLIFE,
                description="Raw elephant ivory tusks, 212 pieces",
                hs_code="0507.10",
                species="Loxodonta  africana",
                cites_appendix=rec.CITES_APPENDIX_I,
                quantity=rec.Quantity(value=3200.0, unit=rec.UNIT_KG),
                declared_value=rec.Money(amount=0.0, currency="usd"),
                co2e_tonnes=99.0,  # a client cannot set it
            )
        ],
        concealment="Tusks wrapped in sacks under bags of groundnuts",
        conveyance=rec.Conveyance(
            mode=rec.TRANSPORT_MODE_SEA,
            vessel_imo="IMO 9074729",
            vessel_name="MV Example Trader",
            container_numbers=["csqu 305438 3"],
        ),
        documents=rec.Documents(
            bill_of_lading="MBA2611200042",
            permits=[rec.Permit(type=rec.PERMIT_TYPE_OTHER, number="PH-2026-118", issuing_country="ke")],
        ),
        route=rec.Route(
            origin_country="ug", export_country="KE", transit_countries=["my"], destination_country="VN"
        ),
        parties=[
            rec.Party(
                kind=rec.PARTY_KIND_PERSON,
                role=rec.PARTY_ROLE_SHIPPER,
                name=" John Doe ",
                country="KE",
                identifier="A1234567",
                personal_data=False,
            ),
            rec.Party(
                kind=rec.PARTY_KIND_COMPANY,
                role=rec.PARTY_ROLE_CONSIGNEE,
                name="Example Trading Co. Ltd",
                country="vn",
            ),
        ],
        operation_code=" thunder 2026 ",
        tlp=rec.TLP_AMBER,
        notes="Declared as groundnuts.",
    )


def ods_seizure() -> rec.Seizure:
    """Undeclared refrigerant cylinders at Laem Chabang."""
    return rec.Seizure(
        incident_date="2026-10-02",
        place=rec.Place(port_locode="THLCH", country="TH"),
        direction=rec.DIRECTION_IMPORT,
        detection_method=rec.DETECTION_METHOD_DOCUMENTARY_CHECK,
        goods=[
            rec.GoodsItem(
                commodity=rec.COMMODITY_ODS_HFC,
                description="Refrigerant R-22 in 73 disposable cylinders",
                hs_code="2903 71",
                ods_substance="r-22",
                quantity=rec.Quantity(value=1000.0, unit=rec.UNIT_KG),
            ),
            rec.GoodsItem(
                commodity=rec.COMMODITY_ODS_HFC,
                description="Trifluoromethane in 1 cylinder",
                hs_code="290341",
                ods_substance="hfc-23",
                quantity=rec.Quantity(value=13.6, unit=rec.UNIT_KG),
            ),
        ],
        operation_code="DEMETER-IX",
        tlp=rec.TLP_GREEN,
    )


def valid_alert() -> rec.Alert:
    return rec.Alert(
        title=" Ivory concealed in groundnut exports via Mombasa ",
        subjects=[
            rec.AlertSubject(kind=rec.SUBJECT_KIND_VESSEL, value="IMO 9074729"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_CONTAINER, value="csqu3054383"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_COMPANY, value="Example Trading Co. Ltd"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_ROUTE, value="ug > ke>vn"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_FLIGHT, value="kq 310"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_PERMIT_SERIES, value="PH-2026-1"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_PERSON, value="John Doe"),
        ],
        indicators=["Groundnuts declared for export to VN", " Freight paid in cash "],
        commodity=rec.COMMODITY_WILDLIFE,
        priority=rec.PRIORITY_HIGH,
        valid_until="2027-02-28",
        recommended_action="Scan all groundnut exports by this shipper.",
        operation_code=" thunder ",
        tlp=rec.TLP_AMBER,
    )
