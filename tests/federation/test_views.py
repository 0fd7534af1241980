"""Views: exactly which fields each view keeps (the table of docs/policy.md),
and, for any seizure, that the redacted view holds no person, identifier or
note, that the statistical view holds only counts and months, and that
projecting never changes the record it projects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from federation.errors import PolicyError
from federation.policy import PolicyNode, parse_policy
from federation.views import CORRECTED_BY_ORIGIN, RETRACTED_BY_ORIGIN, month_of, project
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from node.app import NodeApp
from node.domain import samples
from node.testing.clock import ManualClock

FULL, REDACTED, STATISTICAL = epb.VIEW_FULL, epb.VIEW_REDACTED, epb.VIEW_STATISTICAL
DAY = date(2026, 11, 17)
RECORDED = datetime(2026, 11, 28, 14, 31, 7, 250_000, tzinfo=UTC)


def leaves(message: Message, prefix: str = "") -> set[str]:
    """The dotted paths of the fields set in `message` ("goods.quantity.unit")."""
    out: set[str] = set()
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.message_type is None:
            out.add(path)
        elif field.is_repeated:
            for item in value:
                out |= leaves(item, f"{path}.")
        else:
            out |= leaves(value, f"{path}.")
    return out


def declared(descriptor: Descriptor, prefix: str = "") -> Iterator[str]:
    """Every leaf path a message type declares."""
    for field in descriptor.fields:
        path = f"{prefix}{field.name}"
        if field.message_type is None:
            yield path
        else:
            yield from declared(field.message_type, f"{path}.")


def complete_seizure() -> rec.Seizure:
    """The ivory sample with every field of the proto set somewhere."""
    s = samples.ivory_seizure(DAY)
    s.goods[0].ods_substance = "HCFC-22"
    s.goods[0].basel_code = "A1180"
    s.goods[0].co2e_tonnes = 1.5
    s.conveyance.flight = "KQ310"
    s.conveyance.vehicle_registration = "KCA 123A"
    s.documents.air_waybill = "706-12345675"
    s.documents.permits.add(
        type=rec.PERMIT_TYPE_CITES, number="KE-2026-0042", issuing_country="KE", forged=True
    )
    s.parties[0].identifier = "CPR/2019/12345"
    s.parties.add(
        kind=rec.PARTY_KIND_COMPANY,
        role=rec.PARTY_ROLE_OWNER,
        name="Mwangi Trading (sole trader)",
        country="KE",
        identifier="BN-77812",
        personal_data=True,
    )
    s.parties[1].personal_data = True
    return s


def complete_alert() -> rec.Alert:
    a = samples.vessel_alert(DAY)
    a.subjects.add(kind=rec.SUBJECT_KIND_PERSON, value="John Doe Mwangi")
    a.subjects.add(kind=rec.SUBJECT_KIND_COMPANY, value="Sesame Traders Ltd")
    a.notes = "Source: liaison officer, not to be quoted."
    return a


def body(**kwargs: Message) -> rec.RecordBody:
    b = rec.RecordBody(**kwargs)  # type: ignore[arg-type]
    b.recorded_at.FromDatetime(RECORDED)
    return b


# -- the field table ------------------------------------------------------------------------

SEIZURE_LEAVES = set(declared(rec.Seizure.DESCRIPTOR))
ALERT_LEAVES = set(declared(rec.Alert.DESCRIPTOR))

REDACTED_SEIZURE_DROPS = {
    "concealment",
    "notes",
    "place.description",
    "conveyance.vehicle_registration",
    "parties.identifier",
    "parties.personal_data",
}
STATISTICAL_SEIZURE_KEEPS = {
    "incident_date",  # to the month
    "place.port_locode",
    "place.country",
    "direction",
    "detection_method",
    "goods.commodity",
    "goods.hs_code",
    "goods.species",
    "goods.cites_appendix",
    "goods.ods_substance",
    "goods.basel_code",
    "goods.quantity.value",
    "goods.quantity.unit",
    "goods.co2e_tonnes",
    "route.origin_country",
    "route.export_country",
    "route.transit_countries",
    "route.destination_country",
    "operation_code",
    "tlp",
}
STATISTICAL_ALERT_KEEPS = {
    "subjects.kind",  # routes only
    "subjects.value",
    "commodity",
    "priority",
    "valid_until",  # to the month
    "operation_code",
    "tlp",
}


def test_the_complete_samples_set_every_field_the_proto_declares() -> None:
    """If this fails, a field was added to records.proto: decide what each view does
    with it (views.py, docs/policy.md); until then REDACTED and STATISTICAL leave it out."""
    assert leaves(complete_seizure()) == SEIZURE_LEAVES
    assert leaves(complete_alert()) == ALERT_LEAVES


VIEW_TABLE = [
    ("seizure", FULL, SEIZURE_LEAVES),
    ("seizure", REDACTED, SEIZURE_LEAVES - REDACTED_SEIZURE_DROPS),
    ("seizure", STATISTICAL, STATISTICAL_SEIZURE_KEEPS),
    ("alert", FULL, ALERT_LEAVES),
    ("alert", REDACTED, ALERT_LEAVES - {"notes"}),
    ("alert", STATISTICAL, STATISTICAL_ALERT_KEEPS),
]


@pytest.mark.parametrize(
    ("kind", "view", "kept"), VIEW_TABLE, ids=[f"{k}-{epb.View.Name(v)}" for k, v, _ in VIEW_TABLE]
)
def test_each_view_keeps_exactly_the_fields_of_its_table(
    kind: str, view: epb.View.ValueType, kept: set[str]
) -> None:
    original = body(seizure=complete_seizure()) if kind == "seizure" else body(alert=complete_alert())
    projected = project(original, view)
    assert leaves(getattr(projected, kind)) == kept


def test_the_redacted_seizure_keeps_companies_without_their_identifiers_and_the_intelligence() -> None:
    original = complete_seizure()
    redacted = project(body(seizure=original), REDACTED).seizure
    assert list(redacted.parties) == [
        rec.Party(
            kind=rec.PARTY_KIND_COMPANY, role=rec.PARTY_ROLE_SHIPPER, name="Sesame Traders Ltd", country="KE"
        )
    ]
    assert redacted.goods == original.goods
    assert redacted.route == original.route
    assert redacted.documents == original.documents
    assert redacted.conveyance.container_numbers == original.conveyance.container_numbers
    assert (redacted.place.port_locode, redacted.place.country) == ("KEMBA", "KE")


def test_the_statistical_seizure_counts_goods_by_month_and_country() -> None:
    stats = project(body(seizure=samples.ivory_seizure(DAY)), STATISTICAL)
    assert stats.seizure == rec.Seizure(
        incident_date="2026-11-01",
        place=rec.Place(port_locode="KEMBA", country="KE"),
        direction=rec.DIRECTION_EXPORT,
        detection_method=rec.DETECTION_METHOD_NII_SCAN,
        goods=[
            rec.GoodsItem(
                commodity=rec.COMMODITY_WILDLIFE,
                hs_code="050710",
                species="Loxodonta africana",
                cites_appendix=rec.CITES_APPENDIX_I,
                quantity=rec.Quantity(value=452.5, unit=rec.UNIT_KG),
            ),
            rec.GoodsItem(
                commodity=rec.COMMODITY_WILDLIFE,
                hs_code="050800",
                species="Smutsia gigantea",
                cites_appendix=rec.CITES_APPENDIX_I,
                quantity=rec.Quantity(value=1100, unit=rec.UNIT_KG),
            ),
        ],
        route=rec.Route(
            origin_country="UG", export_country="KE", transit_countries=["MY"], destination_country="VN"
        ),
        operation_code="DEMETER",
        tlp=rec.TLP_AMBER,
    )


def test_the_alert_views_drop_person_subjects_and_keep_only_routes_for_statistics() -> None:
    original = complete_alert()
    redacted = project(body(alert=original), REDACTED).alert
    assert [s.kind for s in redacted.subjects] == [
        rec.SUBJECT_KIND_VESSEL,
        rec.SUBJECT_KIND_ROUTE,
        rec.SUBJECT_KIND_COMPANY,
    ]
    assert (redacted.title, redacted.indicators) == (original.title, original.indicators)
    assert redacted.recommended_action == original.recommended_action
    stats = project(body(alert=original), STATISTICAL).alert
    assert list(stats.subjects) == [rec.AlertSubject(kind=rec.SUBJECT_KIND_ROUTE, value="KE>MY>VN")]
    assert stats.valid_until == "2026-11-01"


@pytest.mark.parametrize("view", [REDACTED, STATISTICAL], ids=["REDACTED", "STATISTICAL"])
def test_a_retraction_keeps_its_target_and_loses_its_reason_outside_the_full_view(
    view: epb.View.ValueType,
) -> None:
    original = body(
        retraction=rec.Retraction(target_record_id="r-1", reason="officer typed the wrong broker name")
    )
    assert project(original, FULL) == original
    assert project(original, view).retraction == rec.Retraction(
        target_record_id="r-1", reason=RETRACTED_BY_ORIGIN
    )


@pytest.mark.parametrize("view", [REDACTED, STATISTICAL], ids=["REDACTED", "STATISTICAL"])
def test_a_correction_projects_its_replacement(view: epb.View.ValueType) -> None:
    s = complete_seizure()
    correction = rec.Correction(target_record_id="r-1", reason="weight was 425.5 kg", seizure=s)
    projected = project(body(correction=correction), view).correction
    assert projected.target_record_id == "r-1"
    assert projected.reason == CORRECTED_BY_ORIGIN
    assert projected.seizure == project(body(seizure=s), view).seizure
    a = complete_alert()
    corrected_alert = project(body(correction=rec.Correction(target_record_id="r-2", alert=a)), view)
    assert corrected_alert.correction.alert == project(body(alert=a), view).alert


def test_recorded_at_is_kept_and_truncated_to_the_day_for_statistics() -> None:
    original = body(seizure=samples.hcfc_seizure(DAY))
    assert project(original, REDACTED).recorded_at == original.recorded_at
    day = project(original, STATISTICAL).recorded_at.ToDatetime(tzinfo=UTC)
    assert day == datetime(2026, 11, 28, tzinfo=UTC)
    assert not project(rec.RecordBody(seizure=samples.hcfc_seizure(DAY)), STATISTICAL).HasField("recorded_at")


def test_an_unknown_view_is_refused() -> None:
    with pytest.raises(PolicyError, match="view 0 is not one of full, redacted, statistical"):
        project(body(seizure=samples.hcfc_seizure(DAY)), epb.VIEW_UNSPECIFIED)


def test_the_full_view_is_an_equal_copy_not_the_same_message() -> None:
    original = body(seizure=complete_seizure())
    full = project(original, FULL)
    assert full == original
    full.seizure.notes = "changed"
    assert original.seizure.notes != "changed"


@pytest.mark.parametrize(
    ("value", "month"),
    [("2026-11-17", "2026-11-01"), ("2026-01-01", "2026-01-01"), ("", ""), ("17/11/2026", "")],
)
def test_month_of_truncates_an_iso_date(value: str, month: str) -> None:
    assert month_of(value) == month


# -- properties -----------------------------------------------------------------------------

free_text = st.text(min_size=1, max_size=40)
parties = st.builds(
    rec.Party,
    kind=st.sampled_from([rec.PARTY_KIND_PERSON, rec.PARTY_KIND_COMPANY, rec.PARTY_KIND_UNSPECIFIED]),
    role=st.sampled_from(list(rec.PartyRole.values())),
    name=free_text,
    country=st.sampled_from(["", "KE", "VN"]),
    identifier=st.one_of(st.just(""), free_text),
    personal_data=st.booleans(),
)


@st.composite
def seizure_bodies(draw: st.DrawFn) -> rec.RecordBody:
    s = samples.ivory_seizure(draw(st.dates(date(2000, 1, 1), date(2030, 12, 31))))
    del s.parties[:]
    s.parties.extend(draw(st.lists(parties, max_size=5)))
    s.notes = draw(st.one_of(st.just(""), free_text))
    s.concealment = draw(st.one_of(st.just(""), free_text))
    s.place.description = draw(st.one_of(st.just(""), free_text))
    s.conveyance.vehicle_registration = draw(st.one_of(st.just(""), free_text))
    out = rec.RecordBody(seizure=s)
    if draw(st.booleans()):
        out = rec.RecordBody(
            correction=rec.Correction(target_record_id="r-1", reason=draw(free_text), seizure=s)
        )
    if draw(st.booleans()):
        out.recorded_at.FromDatetime(RECORDED + timedelta(seconds=draw(st.integers(-(10**8), 10**8))))
    return out


def _seizure(b: rec.RecordBody) -> rec.Seizure:
    return b.correction.seizure if b.HasField("correction") else b.seizure


@given(seizure_bodies())
def test_no_redacted_seizure_holds_a_person_an_identifier_or_free_text(original: rec.RecordBody) -> None:
    redacted = project(original, REDACTED)
    s = _seizure(redacted)
    assert all(p.kind != rec.PARTY_KIND_PERSON and not p.personal_data for p in s.parties)
    assert all(not p.identifier for p in s.parties)
    assert (s.notes, s.concealment, s.place.description, s.conveyance.vehicle_registration) == (
        "",
        "",
        "",
        "",
    )
    kept = [
        p.name for p in _seizure(original).parties if p.kind != rec.PARTY_KIND_PERSON and not p.personal_data
    ]
    assert [p.name for p in s.parties] == kept
    if redacted.HasField("correction"):
        assert redacted.correction.reason == CORRECTED_BY_ORIGIN


@given(seizure_bodies())
def test_a_statistical_seizure_holds_no_party_conveyance_or_document_and_only_a_month(
    original: rec.RecordBody,
) -> None:
    stats = project(original, STATISTICAL)
    s = _seizure(stats)
    assert not s.parties
    assert not s.HasField("conveyance")
    assert not s.HasField("documents")
    assert (s.notes, s.concealment, s.place.description) == ("", "", "")
    assert s.incident_date.endswith("-01")
    assert s.incident_date[:7] == _seizure(original).incident_date[:7]
    assert all(not g.description and not g.HasField("declared_value") for g in s.goods)
    if stats.HasField("recorded_at"):
        assert stats.recorded_at.seconds % 86_400 == 0
        assert stats.recorded_at.nanos == 0


@given(seizure_bodies(), st.sampled_from([FULL, REDACTED, STATISTICAL]))
def test_projecting_never_changes_the_record_it_projects(
    original: rec.RecordBody, view: epb.View.ValueType
) -> None:
    before = original.SerializeToString(deterministic=True)
    projected = project(original, view)
    assert original.SerializeToString(deterministic=True) == before
    assert projected is not original


# -- wired into a node --------------------------------------------------------------------

NATIONAL_REDACTED = """
[[rule]]
name = "everything but RED to the administration, redacted"
match = { tlp = ["clear", "green", "amber", "amber-strict"] }
share = [{ audience = "national", view = "redacted" }]
"""


@pytest.mark.usefixtures("db_url")
def test_a_node_seals_the_view_its_policy_names(app: NodeApp, clock: ManualClock) -> None:
    app.records.policy = parse_policy(NATIONAL_REDACTED, node=PolicyNode("KE", "KE", "ESA", "national"))
    recorded = app.records.record_seizure(samples.ivory_seizure(clock().date() - timedelta(days=3)))
    stored = app.reader.get(recorded.record_id)
    assert (stored.audience, stored.view) == ("national:KE", REDACTED)
    assert [p.kind for p in stored.seizure.parties] == [rec.PARTY_KIND_COMPANY]
    assert stored.seizure.notes == ""
