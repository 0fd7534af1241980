"""Property tests of federation.policy: no policy that loads, nor one built
without the load checks, ever shares beyond a record's TLP."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from federation.errors import PolicyError
from federation.policy import (
    KINDS,
    TLPS,
    Match,
    PolicyNode,
    Rule,
    RulePolicy,
    Share,
)
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from tests.federation.policy_fixtures import (
    CORRECTION,
    FULL,
    KE,
    REDACTED,
    STATISTICAL,
    body_of,
    policy,
)

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
