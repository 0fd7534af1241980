"""The sharing policy: the shipped default over every kind and TLP, the file
format and its configuration errors, matching, and the TLP ceiling (checked at
load and again on every record)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from federation.audiences import parse_audience
from federation.errors import PolicyError
from federation.policy import (
    KINDS,
    TLPS,
    Match,
    NationalPolicy,
    PolicyNode,
    Rule,
    RulePolicy,
    Share,
    load_policy,
    parse_policy,
    tlp_allows,
)
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from node.domain import samples

KE = PolicyNode("KE", "KE", "ESA", "national")
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


# -- the shipped default ------------------------------------------------------------------

OPEN_SEIZURE = [Share("global", STATISTICAL), Share("national:KE", FULL), Share("region:ESA", REDACTED)]
OPEN_ALERT = [Share("global", REDACTED), Share("national:KE", FULL), Share("region:ESA", FULL)]
NATIONAL = [Share("national:KE", FULL)]
HOME = [Share("node:KE", FULL)]

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


# -- configuration errors -----------------------------------------------------------------


def _entry(share: str) -> str:
    if share.startswith("audience"):  # written out, to test the keys of a share
        return f"{{ {share} }}"
    audience, view = share.split()
    return f'{{ audience = "{audience}", view = "{view}" }}'


def rule(match: str, *shares: str, name: str = "x") -> str:
    """One [[rule]] table; each share is "audience view"."""
    entries = ", ".join(_entry(s) for s in shares)
    return f'[[rule]]\nname = "{name}"\nmatch = {{ {match} }}\nshare = [{entries}]\n'


GREEN = 'tlp = ["green"]'

CONFIG_ERRORS = [
    (
        "unknown view",
        rule(GREEN, "global summary"),
        'rule "x": view "summary" is not one of full, redacted, statistical',
    ),
    (
        "unknown audience placeholder",
        rule(GREEN, "nation full"),
        r'rule "x": audience "nation" is neither a placeholder \(node, national, region, global\) nor',
    ),
    (
        "malformed audience name",
        rule('tlp = ["amber"]', "bilateral:VN+KE full"),
        r'rule "x": bilateral audience .* must name two different countries in order \(bilateral:KE\+VN\)',
    ),
    (
        "bad TLP",
        rule('tlp = ["orange"]', "global full"),
        'rule "x": tlp "orange" is not one of clear, green, amber, amber-strict, red',
    ),
    (
        "AMBER to global",
        rule('tlp = ["green", "amber"]', "national full", "global redacted"),
        r'rule "x": TLP:AMBER may go only to named audiences \(node, national, bilateral\), not "global"$',
    ),
    (
        "AMBER to a region",
        rule('tlp = ["amber"]', "region:SEA full"),
        r'rule "x": TLP:AMBER may go only to named audiences .*, not "region:SEA"',
    ),
    (
        "AMBER+STRICT to a bilateral audience",
        rule('tlp = ["amber-strict"]', "bilateral:KE+VN full"),
        r'rule "x": TLP:AMBER\+STRICT stays in the organisation: .*, not "bilateral:KE\+VN"',
    ),
    (
        "AMBER+STRICT to another administration",
        rule('tlp = ["amber-strict"]', "national:VN full"),
        r'rule "x": TLP:AMBER\+STRICT stays in the organisation: .*, not "national:VN"',
    ),
    (
        "a rule without tlp sharing beyond the node",
        rule('kind = ["alert"]', "national full"),
        r'rule "x": TLP:RED never leaves the node: it may go only to "node", not "national" '
        r"\(the rule has no tlp key, so it takes every TLP, TLP:RED included: rules must say",
    ),
    (
        "RED to national",
        rule('tlp = ["red"]', "national full"),
        'rule "x": TLP:RED never leaves the node: it may go only to "node", not "national"$',
    ),
    (
        "RED to another node",
        rule('tlp = ["red"]', "node:KE-MBA full"),
        'rule "x": TLP:RED never leaves the node: it may go only to "node", not "node:KE-MBA"',
    ),
    (
        "unknown kind",
        rule('kind = ["retraction"], tlp = ["green"]', "global full"),
        'rule "x": kind "retraction" is not one of seizure, alert, correction',
    ),
    (
        "unknown commodity",
        rule('commodity = ["ivory"], tlp = ["green"]', "global full"),
        'rule "x": commodity "ivory" is not one of wildlife, timber, hazardous-waste,',
    ),
    (
        "operation with an edition",
        rule('operation = ["DEMETER-IX"], tlp = ["green"]', "global full"),
        'rule "x": operation "DEMETER-IX" must be an operation code base such as DEMETER',
    ),
    (
        "has_personal_data not a boolean",
        rule('has_personal_data = "no", tlp = ["green"]', "global full"),
        'rule "x": has_personal_data must be true or false',
    ),
    (
        "an empty TLP list",
        rule("tlp = []", "global full"),
        'rule "x": tlp must be a non-empty list of strings',
    ),
    (
        "unknown match key",
        rule('tlps = ["green"]', "global full"),
        r"rule \"x\": unknown key 'tlps' \(expected kind, tlp, commodity, operation, has_personal_data\)",
    ),
    (
        "unknown rule key",
        rule(GREEN, "global full") + 'when = "always"\n',
        "rule \"x\": unknown key 'when'",
    ),
    (
        "unknown share key",
        rule(GREEN, 'audience = "global", view = "full", until = "2027-01-01"'),
        r"rule \"x\": unknown key 'until' \(expected audience, view\)",
    ),
    (
        "a share without a view",
        rule(GREEN, 'audience = "global"'),
        'rule "x": each share needs audience = "…" and view = "…"',
    ),
    ("no shares", rule(GREEN), 'rule "x": share must list at least one'),
    (
        "a rule without a name",
        '[[rule]]\nmatch = { tlp = ["green"] }\nshare = [{ audience = "global", view = "full" }]',
        "rule #1 needs a name",
    ),
    (
        "two rules with one name",
        rule(GREEN, "global full") + rule('tlp = ["clear"]', "global full"),
        'rule "x" is defined twice',
    ),
    ("an unknown top-level key", 'rules = "none"', r"unknown key 'rules' \(expected version, rule\)"),
    ("a future version", "version = 2", "version 2 is not supported"),
    ("not TOML", "[[rule]\nname = ", "not valid TOML"),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in CONFIG_ERRORS], ids=[c[0] for c in CONFIG_ERRORS]
)
def test_a_policy_file_with_a_mistake_is_refused_with_a_sentence_naming_it(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        policy(text)
    assert str(caught.value).startswith("test.toml: ")


NODE_ERRORS = [
    ({"role": "hub"}, "node role 'hub' is not one of national, port, regional, global"),
    ({"node_id": "ke"}, "node 'ke' cannot have a sharing policy: audience 'node:ke' is not one of"),
    ({"country": "KEN"}, "audience 'national:KEN' is not one of"),
    ({"region": "east-africa"}, "audience 'region:east-africa' is not one of"),
]


@pytest.mark.parametrize(("change", "message"), NODE_ERRORS, ids=[m.split(":")[0] for _, m in NODE_ERRORS])
def test_a_node_whose_identity_cannot_name_its_audiences_cannot_load_a_policy(
    change: dict[str, str], message: str
) -> None:
    node = {"node_id": "KE", "country": "KE", "region": "ESA", "role": "national"} | change
    with pytest.raises(PolicyError, match=message):
        load_policy(None, **node)


def test_a_missing_policy_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"cannot read the policy file .*missing\.toml"):
        load_policy(tmp_path / "missing.toml", node_id="KE", country="KE", region="ESA", role="national")


# -- the TLP ceiling, defended twice -----------------------------------------------------

CEILING = [
    # audience, own, TLPs it may carry
    ("node:KE", True, {"clear", "green", "amber", "amber-strict", "red"}),
    ("national:KE", True, {"clear", "green", "amber", "amber-strict"}),
    ("node:KE-MBA", False, {"clear", "green", "amber"}),
    ("national:VN", False, {"clear", "green", "amber"}),
    ("bilateral:KE+VN", False, {"clear", "green", "amber"}),
    ("region:ESA", False, {"clear", "green"}),
    ("global", False, {"clear", "green"}),
]


@pytest.mark.parametrize(("audience", "own", "allowed"), CEILING, ids=[c[0] for c in CEILING])
def test_each_tlp_may_reach_only_its_audiences(audience: str, own: bool, allowed: set[str]) -> None:
    parsed = parse_audience(audience)
    assert {name for name, tlp in TLPS.items() if tlp_allows(tlp, parsed, own=own)} == allowed
    assert KE.is_own(audience) == own


def test_shares_drop_what_a_tlp_forbids_even_from_a_policy_built_without_the_load_checks() -> None:
    reckless = RulePolicy(
        KE,
        (
            Rule(
                "everything everywhere",
                Match(),
                (Share("global", FULL), Share("bilateral:KE+VN", FULL), Share("national:KE", REDACTED)),
            ),
        ),
    )
    assert reckless.shares(*body_of("seizure", rec.TLP_GREEN)) == [
        Share("bilateral:KE+VN", FULL),
        Share("global", FULL),
        Share("national:KE", REDACTED),
    ]
    assert reckless.shares(*body_of("seizure", rec.TLP_AMBER)) == [
        Share("bilateral:KE+VN", FULL),
        Share("national:KE", REDACTED),
    ]
    assert reckless.shares(*body_of("seizure", rec.TLP_AMBER_STRICT)) == [Share("national:KE", REDACTED)]
    assert reckless.shares(*body_of("alert", rec.TLP_RED)) == HOME
    assert reckless.shares(*body_of("alert", rec.TLP_UNSPECIFIED)) == HOME


def test_a_record_whose_every_share_is_dropped_stays_on_the_node() -> None:
    only_global = RulePolicy(KE, (Rule("r", Match(), (Share("global", FULL), Share("bogus", FULL))),))
    assert only_global.shares(*body_of("alert", rec.TLP_AMBER)) == HOME


# -- properties ---------------------------------------------------------------------------

AUDIENCE_CHOICES = (
    "node",
    "national",
    "region",
    "global",
    "node:KE",
    "node:VN-HPH",
    "national:KE",
    "national:VN",
    "bilateral:KE+VN",
    "region:SEA",
)
TLP_VALUES = list(TLPS.values())

shares_toml = st.lists(
    st.tuples(st.sampled_from(AUDIENCE_CHOICES), st.sampled_from(["full", "redacted", "statistical"])),
    min_size=1,
    max_size=2,
).map(lambda xs: "[" + ", ".join(f'{{ audience = "{a}", view = "{v}" }}' for a, v in xs) + "]")
match_toml = st.fixed_dictionaries(
    # A rule without `tlp` loads only if it keeps to the node: the error table covers it.
    {"tlp": st.lists(st.sampled_from(list(TLPS)), min_size=1, max_size=2, unique=True)},
    optional={
        "kind": st.lists(st.sampled_from(list(KINDS)), min_size=1, max_size=3, unique=True),
        "commodity": st.lists(st.sampled_from(["wildlife", "timber", "ods-hfc"]), min_size=1, unique=True),
        "operation": st.lists(st.sampled_from(["DEMETER", "CASSINI"]), min_size=1, unique=True),
        "has_personal_data": st.booleans(),
    },
)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    assert isinstance(value, list)
    return "[" + ", ".join(f'"{v}"' for v in value) + "]"


@st.composite
def policy_texts(draw: st.DrawFn) -> str:
    rules = []
    for i in range(draw(st.integers(1, 3))):
        match = ", ".join(f"{k} = {_toml_value(v)}" for k, v in draw(match_toml).items())
        rules.append(f'[[rule]]\nname = "r{i}"\nmatch = {{ {match} }}\nshare = {draw(shares_toml)}\n')
    return "\n".join(rules)


@st.composite
def records(draw: st.DrawFn) -> tuple[epb.RecordKind.ValueType, rec.RecordBody]:
    tlp = draw(st.sampled_from([*TLP_VALUES, rec.TLP_UNSPECIFIED]))
    kind = draw(st.sampled_from(["seizure", "alert", "corrected seizure", "corrected alert"]))
    record_kind, body = body_of(kind, tlp)
    subject = body.correction if record_kind == CORRECTION else body
    inner = subject.seizure if subject.HasField("seizure") else subject.alert
    inner.operation_code = draw(st.sampled_from(["", "DEMETER-IX", "CASSINI"]))
    if isinstance(inner, rec.Seizure) and draw(st.booleans()):
        del inner.parties[1]  # no person left
    return record_kind, body


def _within_tlp(
    node: PolicyNode, kind: epb.RecordKind.ValueType, body: rec.RecordBody, got: list[Share]
) -> None:
    subject = body.correction if kind == CORRECTION else body
    tlp = (subject.seizure if subject.HasField("seizure") else subject.alert).tlp
    assert got, "a record always goes somewhere"
    assert got == sorted(set(got))
    assert len({s.audience for s in got}) == len(got)
    for share in got:
        assert node.allows(tlp, share.audience), (rec.TLP.Name(tlp), share)
    if tlp in (rec.TLP_RED, rec.TLP_UNSPECIFIED):
        assert got == [node.home]


@settings(max_examples=200, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(text=policy_texts(), record=records())
def test_no_policy_that_loads_ever_shares_beyond_the_records_tlp(
    text: str, record: tuple[epb.RecordKind.ValueType, rec.RecordBody]
) -> None:
    try:
        loaded = policy(text)
    except PolicyError:
        assume(False)
        raise
    _within_tlp(KE, *record, loaded.shares(*record))


@settings(max_examples=200)
@given(
    rules=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from([a for a in AUDIENCE_CHOICES if ":" in a or a == "global"]),
                st.sampled_from([FULL, REDACTED, STATISTICAL]),
            ),
            min_size=1,
        ),
        max_size=3,
    ),
    record=records(),
)
def test_even_an_unchecked_policy_never_shares_beyond_the_records_tlp(
    rules: list[list[tuple[str, epb.View.ValueType]]], record: tuple[epb.RecordKind.ValueType, rec.RecordBody]
) -> None:
    unchecked = RulePolicy(
        KE, tuple(Rule(f"r{i}", Match(), tuple(Share(a, v) for a, v in r)) for i, r in enumerate(rules))
    )
    _within_tlp(KE, *record, unchecked.shares(*record))
