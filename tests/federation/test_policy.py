"""Tests of federation.policy: the shipped default and the policy file format."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.errors import PolicyError
from federation.policy import (
    NationalPolicy,
    RulePolicy,
    Share,
    load_policy,
)
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from node.domain import samples
from tests.federation.policy_fixtures import (
    ALERT,
    CORRECTION,
    DAY,
    FULL,
    HOME,
    REDACTED,
    SEIZURE,
    STATISTICAL,
    alert,
    body_of,
    default,
    policy,
    seizure,
)

# -- the shipped default ------------------------------------------------------------------

OPEN_SEIZURE = [Share("global", STATISTICAL), Share("national:KE", FULL), Share("region:ESA", REDACTED)]
OPEN_ALERT = [Share("global", REDACTED), Share("national:KE", FULL), Share("region:ESA", FULL)]
NATIONAL = [Share("national:KE", FULL)]

DEFAULT_MATRIX = [
    # kind, TLP, exact shares
    ("seizure", rec.TLP_CLEAR, OPEN_SEIZURE),
    ("seizure", rec.TLP_GREEN, OPEN_SEIZURE),
    ("seizure", rec.TLP_AMBER, NATIONAL),
    ("seizure", rec.TLP_AMBER_STRICT, NATIONAL),
    ("seizure", rec.TLP_RED, HOME),
    ("alert", rec.TLP_CLEAR, OPEN_ALERT),
    ("alert", rec.TLP_GREEN, OPEN_ALERT),
    ("alert", rec.TLP_AMBER, NATIONAL),
    ("alert", rec.TLP_AMBER_STRICT, NATIONAL),
    ("alert", rec.TLP_RED, HOME),
    ("corrected seizure", rec.TLP_CLEAR, OPEN_SEIZURE),
    ("corrected seizure", rec.TLP_GREEN, OPEN_SEIZURE),
    ("corrected seizure", rec.TLP_AMBER, NATIONAL),
    ("corrected seizure", rec.TLP_AMBER_STRICT, NATIONAL),
    ("corrected seizure", rec.TLP_RED, HOME),
    ("corrected alert", rec.TLP_CLEAR, OPEN_ALERT),
    ("corrected alert", rec.TLP_GREEN, OPEN_ALERT),
    ("corrected alert", rec.TLP_AMBER, NATIONAL),
    ("corrected alert", rec.TLP_AMBER_STRICT, NATIONAL),
    ("corrected alert", rec.TLP_RED, HOME),
]


@pytest.mark.parametrize(
    ("kind", "tlp", "expected"),
    DEFAULT_MATRIX,
    ids=[f"{k}-{rec.TLP.Name(t)}" for k, t, _ in DEFAULT_MATRIX],
)
def test_the_default_policy_shares_each_kind_and_tlp_exactly_so(
    kind: str, tlp: rec.TLP.ValueType, expected: list[Share]
) -> None:
    assert default().shares(*body_of(kind, tlp)) == expected


def test_the_default_policy_resolves_a_port_node_to_its_administration_and_region() -> None:
    port = default(node_id="KE-MBA", role="port")
    assert port.shares(*body_of("seizure", rec.TLP_AMBER)) == NATIONAL
    assert port.shares(*body_of("seizure", rec.TLP_RED)) == [Share("node:KE-MBA", FULL)]
    assert port.audiences() == ["global", "national:KE", "node:KE-MBA", "region:ESA"]


def test_a_node_without_a_region_leaves_the_regional_shares_out_and_says_so() -> None:
    ke = default(region="")
    assert ke.shares(*body_of("seizure", rec.TLP_GREEN)) == [
        Share("global", STATISTICAL),
        Share("national:KE", FULL),
    ]
    assert any('"region" left out: node KE has no region' in line for line in ke.left_out)


def test_a_hub_without_country_or_region_loads_the_default_and_shares_only_globally() -> None:
    hub = default(node_id="WCO-GLOBAL", country="", region="", role="global")
    assert hub.shares(*body_of("alert", rec.TLP_GREEN)) == [Share("global", REDACTED)]
    assert hub.shares(*body_of("alert", rec.TLP_AMBER)) == [Share("node:WCO-GLOBAL", FULL)]
    assert len(hub.left_out) == 6


# -- the file format ----------------------------------------------------------------------


def test_a_policy_file_is_read_from_its_path(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[[rule]]\nname = "alerts to KE+VN"\nmatch = { kind = ["alert"], tlp = ["amber"] }\n'
        'share = [{ audience = "bilateral:KE+VN", view = "full" }]\n'
    )
    loaded = load_policy(path, node_id="KE", country="KE", region="ESA", role="national")
    assert loaded.shares(*body_of("alert", rec.TLP_AMBER)) == [Share("bilateral:KE+VN", FULL)]
    assert loaded.audiences() == ["bilateral:KE+VN", "node:KE"]


def test_an_empty_policy_keeps_everything_on_the_node() -> None:
    empty = policy("")
    for kind in ("seizure", "alert", "corrected seizure"):
        assert empty.shares(*body_of(kind, rec.TLP_CLEAR)) == HOME


RULES_AMBER_ALERTS = """
[[rule]]
name = "alerts"
match = { kind = "alert", tlp = ["clear", "green", "amber"] }
share = [{ audience = "national", view = "redacted" }]
"""


def test_every_matching_rule_contributes_and_the_widest_view_of_an_audience_wins() -> None:
    both = policy(
        RULES_AMBER_ALERTS
        + """
[[rule]]
name = "green alerts in full"
match = { kind = ["alert"], tlp = ["green"] }
share = [{ audience = "national", view = "full" }, { audience = "global", view = "statistical" }]
"""
    )
    assert both.shares(*body_of("alert", rec.TLP_GREEN)) == [
        Share("global", STATISTICAL),
        Share("national:KE", FULL),
    ]
    assert both.shares(*body_of("alert", rec.TLP_AMBER)) == [Share("national:KE", REDACTED)]
    assert both.shares(*body_of("seizure", rec.TLP_GREEN)) == HOME  # no rule matches


def _one_rule(match: str, share: str = '[{ audience = "global", view = "full" }]') -> RulePolicy:
    return policy(f'[[rule]]\nname = "r"\nmatch = {{ {match} }}\nshare = {share}\n')


def test_commodity_matches_any_goods_item_of_a_seizure_and_the_commodity_of_an_alert() -> None:
    timber = _one_rule('tlp = ["green"], commodity = ["timber", "ods_hfc"]')
    hcfc = samples.hcfc_seizure(DAY)
    assert timber.shares(SEIZURE, rec.RecordBody(seizure=hcfc)) == [Share("global", FULL)]
    assert timber.shares(*body_of("seizure", rec.TLP_GREEN)) == HOME  # wildlife
    mixed = seizure()
    mixed.goods.add(commodity=rec.COMMODITY_TIMBER)
    assert timber.shares(SEIZURE, rec.RecordBody(seizure=mixed)) == [Share("global", FULL)]
    permit = samples.permit_alert(DAY)
    assert timber.shares(ALERT, rec.RecordBody(alert=permit)) == [Share("global", FULL)]


def test_operation_matches_the_code_base_of_every_edition() -> None:
    demeter = _one_rule('tlp = ["green"], operation = ["demeter"]')
    s = seizure()
    for code, shared in (("DEMETER", True), ("DEMETER-IX", True), ("DEMETER 2026", True), ("CASSINI", False)):
        s.operation_code = code
        expected = [Share("global", FULL)] if shared else HOME
        assert demeter.shares(SEIZURE, rec.RecordBody(seizure=s)) == expected, code


def test_has_personal_data_looks_at_person_parties_sole_traders_and_person_subjects() -> None:
    impersonal = _one_rule('tlp = ["green"], has_personal_data = false')
    with_person = seizure()  # the sample names a broker
    assert impersonal.shares(SEIZURE, rec.RecordBody(seizure=with_person)) == HOME
    companies = seizure()
    del companies.parties[1]
    assert impersonal.shares(SEIZURE, rec.RecordBody(seizure=companies)) == [Share("global", FULL)]
    companies.parties[0].personal_data = True  # a sole trader
    assert impersonal.shares(SEIZURE, rec.RecordBody(seizure=companies)) == HOME
    a = alert()
    assert impersonal.shares(ALERT, rec.RecordBody(alert=a)) == [Share("global", FULL)]
    a.subjects.add(kind=rec.SUBJECT_KIND_PERSON, value="John Doe Mwangi")
    assert impersonal.shares(ALERT, rec.RecordBody(alert=a)) == HOME


def test_a_correction_matches_its_replacements_kind_and_the_correction_kind() -> None:
    seizures = _one_rule('kind = ["seizure"], tlp = ["green"]')
    corrections = _one_rule('kind = ["correction"], tlp = ["green"]')
    for kind, by_seizure_rule in (("corrected seizure", True), ("corrected alert", False)):
        record = body_of(kind, rec.TLP_GREEN)
        assert seizures.shares(*record) == ([Share("global", FULL)] if by_seizure_rule else HOME)
        assert corrections.shares(*record) == [Share("global", FULL)]
    assert corrections.shares(*body_of("seizure", rec.TLP_GREEN)) == HOME


def test_a_correction_is_decided_from_its_replacements_tlp() -> None:
    kind, body = body_of("corrected seizure", rec.TLP_GREEN)
    assert default().shares(kind, body) == OPEN_SEIZURE
    body.correction.seizure.tlp = rec.TLP_RED
    assert default().shares(kind, body) == HOME


def test_tlp_names_accept_the_official_spelling_and_underscores() -> None:
    for spelling in ("amber-strict", "AMBER+STRICT", "amber_strict"):
        p = _one_rule(f'tlp = ["{spelling}"]', '[{ audience = "national", view = "full" }]')
        assert p.shares(*body_of("alert", rec.TLP_AMBER_STRICT)) == NATIONAL


def test_retractions_are_not_decided_by_policy() -> None:
    retraction = rec.RecordBody(retraction=rec.Retraction(target_record_id="x", reason="wrong"))
    with pytest.raises(PolicyError, match="retraction is not decided by policy"):
        default().shares(epb.RECORD_KIND_RETRACTION, retraction)
    with pytest.raises(PolicyError, match="retraction is not decided by policy"):
        NationalPolicy("KE", "KE").shares(epb.RECORD_KIND_RETRACTION, retraction)


def test_a_kind_that_does_not_match_the_body_is_refused() -> None:
    with pytest.raises(PolicyError, match="RECORD_KIND_ALERT cannot carry a seizure body"):
        default().shares(ALERT, rec.RecordBody(seizure=seizure()))
    with pytest.raises(PolicyError, match="without a replacement"):
        default().shares(CORRECTION, rec.RecordBody(correction=rec.Correction(target_record_id="x")))


def test_the_national_policy_keeps_red_home_and_sends_the_rest_to_the_administration() -> None:
    national = NationalPolicy("KE", "KE")
    assert national.shares(*body_of("seizure", rec.TLP_RED)) == HOME
    assert national.shares(*body_of("corrected alert", rec.TLP_AMBER)) == NATIONAL
    assert national.own_audiences() == ["node:KE", "national:KE"]
