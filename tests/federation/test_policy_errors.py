"""Tests of federation.policy: configuration mistakes refused with a sentence,
and the TLP ceiling defended twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.audiences import parse_audience
from federation.errors import PolicyError
from federation.policy import (
    TLPS,
    Match,
    Rule,
    RulePolicy,
    Share,
    load_policy,
    tlp_allows,
)
from gcn.v1 import records_pb2 as rec
from tests.federation.policy_fixtures import (
    FULL,
    HOME,
    KE,
    REDACTED,
    body_of,
    policy,
)

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
