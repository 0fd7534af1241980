"""Sharing policy: the origin decides where each new record goes, and in what view.

A policy maps a new record to a list of `Share`s, each `(audience, view)`; each
share becomes one envelope. This module holds the decision only: it is pure
(`load_policy` reads one file, nothing else does I/O). The file format, the
shipped default and the TLP rules are documented in `docs/policy.md`.

Invariants of `RulePolicy.shares` (the policy a node loads from its file):

- The answer is never empty, deduplicated, sorted, and names each audience
  once; when two rules send one audience different views, the widest wins
  (full > redacted > statistical).
- TLP:RED (and a record with no TLP) never leaves the node: its only share is
  `node:<id>`, full. A record that no rule matches stays on the node the same way.
- TLP is enforced twice: `load_policy` refuses a rule whose shares exceed what a
  TLP it takes allows (a rule with no `tlp` key takes every TLP, RED included),
  and `shares` drops, again, any share beyond the record's TLP.
- A correction is decided from its replacement (its TLP, commodity, operation,
  persons); it matches the rules of its replacement's kind and those naming
  `correction`. A retraction is not decided by policy at all: the caller sends it
  where the record it retracts went (`shares` refuses a retraction).

`NationalPolicy` is the built-in policy of a node that has not configured
sharing: TLP:RED stays on the node, everything else goes, in full, to the node's
own administration (`national:<CC>`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from federation.audiences import (
    Audience,
    AudienceError,
    national_audience,
    node_audience,
    parse_audience,
)
from federation.errors import PolicyError
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec

DEFAULT_POLICY = "default_policy.toml"
ROLES = ("national", "port", "regional", "global")
PLACEHOLDERS = ("node", "national", "region", "global")

KINDS: Mapping[str, epb.RecordKind.ValueType] = {
    "seizure": epb.RECORD_KIND_SEIZURE,
    "alert": epb.RECORD_KIND_ALERT,
    "correction": epb.RECORD_KIND_CORRECTION,
}
TLPS: Mapping[str, rec.TLP.ValueType] = {
    "clear": rec.TLP_CLEAR,
    "green": rec.TLP_GREEN,
    "amber": rec.TLP_AMBER,
    "amber-strict": rec.TLP_AMBER_STRICT,
    "red": rec.TLP_RED,
}
VIEWS: Mapping[str, epb.View.ValueType] = {
    "full": epb.VIEW_FULL,
    "redacted": epb.VIEW_REDACTED,
    "statistical": epb.VIEW_STATISTICAL,
}
COMMODITIES: Mapping[str, rec.Commodity.ValueType] = {
    name.removeprefix("COMMODITY_").lower().replace("_", "-"): value
    for name, value in rec.Commodity.items()
    if value != rec.COMMODITY_UNSPECIFIED
}

_TLP_LABELS = {
    rec.TLP_CLEAR: "TLP:CLEAR",
    rec.TLP_GREEN: "TLP:GREEN",
    rec.TLP_AMBER: "TLP:AMBER",
    rec.TLP_AMBER_STRICT: "TLP:AMBER+STRICT",
    rec.TLP_RED: "TLP:RED",
}
_MOST_RESTRICTIVE_FIRST = (rec.TLP_RED, rec.TLP_AMBER_STRICT, rec.TLP_AMBER, rec.TLP_GREEN, rec.TLP_CLEAR)
_NAMED = ("node", "national", "bilateral")
_VIEW_WIDTH = {epb.VIEW_FULL: 3, epb.VIEW_REDACTED: 2, epb.VIEW_STATISTICAL: 1}
_OPERATION_RE = re.compile(r"[A-Z0-9]+")


@dataclass(frozen=True, order=True)
class Share:
    audience: str
    view: epb.View.ValueType


class Policy(Protocol):
    def shares(self, kind: epb.RecordKind.ValueType, body: rec.RecordBody) -> list[Share]: ...


# -- the TLP ceiling ----------------------------------------------------------------------


def tlp_allows(tlp: int, audience: Audience, *, own: bool) -> bool:
    """May a record of this TLP go to this audience? `own` says whether the
    audience is the origin's own node or own administration (`national:<its CC>`).

    CLEAR, GREEN: anywhere. AMBER: named audiences only (node, national,
    bilateral). AMBER+STRICT: the organisation only (own node, own national).
    RED, and anything else: the own node only."""
    if tlp in (rec.TLP_CLEAR, rec.TLP_GREEN):
        return True
    if tlp == rec.TLP_AMBER:
        return audience.kind in _NAMED
    if tlp == rec.TLP_AMBER_STRICT:
        return own and audience.kind in ("node", "national")
    return own and audience.kind == "node"


def _ceiling(tlp: int) -> str:
    if tlp == rec.TLP_RED:
        return 'TLP:RED never leaves the node: it may go only to "node"'
    if tlp == rec.TLP_AMBER_STRICT:
        return 'TLP:AMBER+STRICT stays in the organisation: it may go only to "node" and "national"'
    return "TLP:AMBER may go only to named audiences (node, national, bilateral)"


@dataclass(frozen=True)
class PolicyNode:
    """The node a policy is loaded for: what its placeholders resolve to."""

    node_id: str
    country: str
    region: str
    role: str

    @property
    def home(self) -> Share:
        return Share(node_audience(self.node_id), epb.VIEW_FULL)

    def is_own(self, audience: str) -> bool:
        return audience == node_audience(self.node_id) or (
            bool(self.country) and audience == national_audience(self.country)
        )

    def allows(self, tlp: int, audience: str) -> bool:
        try:
            parsed = parse_audience(audience)
        except AudienceError:
            return False
        return tlp_allows(tlp, parsed, own=self.is_own(audience))


# -- what a rule can match on -------------------------------------------------------------


@dataclass(frozen=True)
class RecordFacts:
    """What the rules of a policy look at in one record."""

    kinds: frozenset[int]  # a correction is both "correction" and its replacement's kind
    tlp: int
    commodities: frozenset[int]
    operation: str  # the code base: "DEMETER-IX" → "DEMETER"
    personal_data: bool


def operation_base(code: str) -> str:
    """ "DEMETER-IX" and "DEMETER 2026" are both operation DEMETER (as `node.domain.index`)."""
    return code.replace("-", " ").split(" ")[0].upper() if code else ""


def _seizure_facts(kinds: frozenset[int], s: rec.Seizure) -> RecordFacts:
    personal = any(p.kind == rec.PARTY_KIND_PERSON or p.personal_data for p in s.parties)
    commodities = frozenset(g.commodity for g in s.goods)
    return RecordFacts(kinds, s.tlp, commodities, operation_base(s.operation_code), personal)


def _alert_facts(kinds: frozenset[int], a: rec.Alert) -> RecordFacts:
    personal = any(subject.kind == rec.SUBJECT_KIND_PERSON for subject in a.subjects)
    return RecordFacts(kinds, a.tlp, frozenset({a.commodity}), operation_base(a.operation_code), personal)


def facts_of(kind: epb.RecordKind.ValueType, body: rec.RecordBody) -> RecordFacts:
    which = body.WhichOneof("body")
    if kind == epb.RECORD_KIND_RETRACTION or which == "retraction":
        raise PolicyError("a retraction is not decided by policy: it goes where the retracted record went")
    if which is None or KINDS.get(which) != kind:
        raise PolicyError(
            f"a record of kind {epb.RecordKind.Name(kind)} cannot carry a {which or 'empty'} body"
        )
    if which == "seizure":
        return _seizure_facts(frozenset({kind}), body.seizure)
    if which == "alert":
        return _alert_facts(frozenset({kind}), body.alert)
    replacement = body.correction.WhichOneof("replacement")
    if replacement == "seizure":
        return _seizure_facts(frozenset({kind, epb.RECORD_KIND_SEIZURE}), body.correction.seizure)
    if replacement == "alert":
        return _alert_facts(frozenset({kind, epb.RECORD_KIND_ALERT}), body.correction.alert)
    raise PolicyError("a correction without a replacement cannot be shared")


@dataclass(frozen=True)
class Match:
    """Every key given must match (and); within a key, any value (or). None: any."""

    kinds: frozenset[int] | None = None
    tlps: frozenset[int] | None = None
    commodities: frozenset[int] | None = None
    operations: frozenset[str] | None = None
    has_personal_data: bool | None = None

    def admits(self, facts: RecordFacts) -> bool:
        return (
            (self.kinds is None or bool(self.kinds & facts.kinds))
            and (self.tlps is None or facts.tlp in self.tlps)
            and (self.commodities is None or bool(self.commodities & facts.commodities))
            and (self.operations is None or facts.operation in self.operations)
            and (self.has_personal_data is None or self.has_personal_data == facts.personal_data)
        )

    def admitted_tlps(self) -> tuple[int, ...]:
        """The TLPs this match takes, most restrictive first."""
        return tuple(t for t in _MOST_RESTRICTIVE_FIRST if self.tlps is None or t in self.tlps)


@dataclass(frozen=True)
class Rule:
    name: str
    match: Match
    shares: tuple[Share, ...]


def _one_view_per_audience(shares: Sequence[Share]) -> list[Share]:
    best: dict[str, epb.View.ValueType] = {}
    for share in shares:
        current = best.get(share.audience)
        if current is None or _VIEW_WIDTH.get(share.view, 0) > _VIEW_WIDTH.get(current, 0):
            best[share.audience] = share.view
    return sorted(Share(audience, view) for audience, view in best.items())


@dataclass(frozen=True)
class RulePolicy:
    """A node's sharing policy: ordered rules, every matching rule contributes."""

    node: PolicyNode
    rules: tuple[Rule, ...]
    # Shares the file names but this node cannot resolve ("region" on a node
    # without a region): one sentence each, for the start-up log.
    left_out: tuple[str, ...] = ()

    def shares(self, kind: epb.RecordKind.ValueType, body: rec.RecordBody) -> list[Share]:
        facts = facts_of(kind, body)
        if facts.tlp not in (rec.TLP_CLEAR, rec.TLP_GREEN, rec.TLP_AMBER, rec.TLP_AMBER_STRICT):
            return [self.node.home]
        wanted = [share for rule in self.rules if rule.match.admits(facts) for share in rule.shares]
        allowed = [share for share in wanted if self.node.allows(facts.tlp, share.audience)]
        return _one_view_per_audience(allowed) or [self.node.home]

    def audiences(self) -> list[str]:
        """Every audience this policy can share to (the node's own included):
        the audiences whose current key the node needs."""
        names = {self.node.home.audience}
        names.update(share.audience for rule in self.rules for share in rule.shares)
        return sorted(names)


@dataclass(frozen=True)
class NationalPolicy:
    node_id: str
    country: str

    def shares(self, kind: epb.RecordKind.ValueType, body: rec.RecordBody) -> list[Share]:
        if facts_of(kind, body).tlp == rec.TLP_RED:
            return [Share(node_audience(self.node_id), epb.VIEW_FULL)]
        return [Share(national_audience(self.country), epb.VIEW_FULL)]

    def own_audiences(self) -> list[str]:
        """The audiences whose keys this node holds and must create at set-up."""
        return [node_audience(self.node_id), national_audience(self.country)]


# -- the policy file ----------------------------------------------------------------------


def load_policy(path: Path | None, *, node_id: str, country: str, region: str, role: str) -> RulePolicy:
    """Load and check a policy file for this node; None loads the shipped default."""
    if path is None:
        source = resources.files("federation").joinpath(DEFAULT_POLICY)
        text, name = source.read_text(encoding="utf-8"), f"(default) {DEFAULT_POLICY}"
    else:
        try:
            text, name = path.read_text(encoding="utf-8"), str(path)
        except OSError as e:
            raise PolicyError(f"cannot read the policy file {path}: {e.strerror or e}") from e
    return parse_policy(text, node=_policy_node(node_id, country, region, role), source=name)


def parse_policy(text: str, *, node: PolicyNode, source: str = "policy") -> RulePolicy:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"{source}: not valid TOML: {e}") from e
    _only_keys(document, ("version", "rule"), source)
    if document.get("version", 1) != 1:
        raise PolicyError(f"{source}: version {document['version']!r} is not supported (only 1)")
    tables = document.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise PolicyError(f"{source}: rules must be [[rule]] tables")
    rules: list[Rule] = []
    left_out: list[str] = []
    for number, table in enumerate(tables, 1):
        rule, skipped = _parse_rule(table, number, node, source)
        if any(r.name == rule.name for r in rules):
            raise PolicyError(f'{source}: rule "{rule.name}" is defined twice')
        rules.append(rule)
        left_out.extend(skipped)
    return RulePolicy(node, tuple(rules), tuple(left_out))


def _policy_node(node_id: str, country: str, region: str, role: str) -> PolicyNode:
    if role not in ROLES:
        raise PolicyError(f"node role {role!r} is not one of {', '.join(ROLES)}")
    for audience in (
        node_audience(node_id),
        national_audience(country) if country else "global",
        f"region:{region}" if region else "global",
    ):
        try:
            parse_audience(audience)
        except AudienceError as e:
            raise PolicyError(f"node {node_id!r} cannot have a sharing policy: {e}") from e
    return PolicyNode(node_id, country, region, role)


def _only_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise PolicyError(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(allowed)})")


def _parse_rule(
    table: Mapping[str, Any], number: int, node: PolicyNode, source: str
) -> tuple[Rule, list[str]]:
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PolicyError(f"{source}: rule #{number} needs a name")
    where = f'{source}: rule "{name}"'
    _only_keys(table, ("name", "match", "share"), where)
    match_table = table.get("match", {})
    if not isinstance(match_table, dict):
        raise PolicyError(f'{where}: match must be a table, e.g. match = {{ kind = ["alert"] }}')
    match = _parse_match(match_table, where)
    entries = table.get("share")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise PolicyError(f'{where}: share must list at least one {{ audience = "…", view = "…" }}')
    targets = [_parse_share(entry, where, node) for entry in entries]
    _check_tlp(match, targets, where)
    shares = tuple(Share(t.name, t.view) for t in targets if t.name is not None)
    skipped = [
        f'rule "{name}": share to "{t.written}" left out: {t.missing}' for t in targets if t.name is None
    ]
    return Rule(name, match, shares), skipped


def _parse_match(table: Mapping[str, Any], where: str) -> Match:
    _only_keys(table, ("kind", "tlp", "commodity", "operation", "has_personal_data"), where)
    personal = table.get("has_personal_data")
    if personal is not None and not isinstance(personal, bool):
        raise PolicyError(f"{where}: has_personal_data must be true or false")
    return Match(
        kinds=_names(table, "kind", KINDS, where),
        tlps=_names(table, "tlp", TLPS, where),
        commodities=_names(table, "commodity", COMMODITIES, where),
        operations=_operations(table, where),
        has_personal_data=personal,
    )


def _strings(table: Mapping[str, Any], key: str, where: str) -> list[str] | None:
    if key not in table:
        return None
    value = table[key]
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise PolicyError(f"{where}: {key} must be a non-empty list of strings")
    return items


def _names(table: Mapping[str, Any], key: str, known: Mapping[str, int], where: str) -> frozenset[Any] | None:
    items = _strings(table, key, where)
    if items is None:
        return None
    values = set()
    for item in items:
        normal = item.strip().lower().replace("_", "-").replace("+", "-")
        if normal not in known:
            raise PolicyError(f'{where}: {key} "{item}" is not one of {", ".join(known)}')
        values.add(known[normal])
    return frozenset(values)


def _operations(table: Mapping[str, Any], where: str) -> frozenset[str] | None:
    items = _strings(table, "operation", where)
    if items is None:
        return None
    for item in items:
        if not _OPERATION_RE.fullmatch(item.strip().upper()):
            raise PolicyError(
                f'{where}: operation "{item}" must be an operation code base such as DEMETER '
                "(letters and digits; it matches every edition, e.g. DEMETER-IX)"
            )
    return frozenset(item.strip().upper() for item in items)


@dataclass(frozen=True)
class _Target:
    written: str
    audience: Audience  # for the TLP check; a placeholder's kind even when unresolved
    own: bool
    name: str | None  # None: this node has no such audience
    view: epb.View.ValueType
    missing: str = ""


def _parse_share(entry: Mapping[str, Any], where: str, node: PolicyNode) -> _Target:
    _only_keys(entry, ("audience", "view"), where)
    written, view = entry.get("audience"), entry.get("view")
    if not isinstance(written, str) or not isinstance(view, str):
        raise PolicyError(f'{where}: each share needs audience = "…" and view = "…"')
    if view not in VIEWS:
        raise PolicyError(f'{where}: view "{view}" is not one of {", ".join(VIEWS)}')
    return _resolve(written, VIEWS[view], where, node)


def _resolve(written: str, view: epb.View.ValueType, where: str, node: PolicyNode) -> _Target:
    if written == "node":
        name = node_audience(node.node_id)
        return _Target(written, parse_audience(name), True, name, view)
    if written == "national":
        if not node.country:
            return _unresolved(written, "national", True, view, f"node {node.node_id} has no country")
        name = national_audience(node.country)
        return _Target(written, parse_audience(name), True, name, view)
    if written == "region":
        if not node.region:
            return _unresolved(written, "region", False, view, f"node {node.node_id} has no region")
        name = f"region:{node.region}"
        return _Target(written, parse_audience(name), False, name, view)
    if ":" not in written and written != "global":
        raise PolicyError(
            f'{where}: audience "{written}" is neither a placeholder ({", ".join(PLACEHOLDERS)}) '
            "nor an audience name (node:ID, national:CC, bilateral:CC+CC, region:NAME)"
        )
    try:
        audience = parse_audience(written)
    except AudienceError as e:
        raise PolicyError(f"{where}: {e}") from e
    return _Target(written, audience, node.is_own(written), written, view)


def _unresolved(written: str, kind: str, own: bool, view: epb.View.ValueType, why: str) -> _Target:
    return _Target(written, Audience(kind, written, ()), own, None, view, why)


def _check_tlp(match: Match, targets: Sequence[_Target], where: str) -> None:
    for tlp in match.admitted_tlps():
        for target in targets:
            if not tlp_allows(tlp, target.audience, own=target.own):
                hint = (
                    " (the rule has no tlp key, so it takes every TLP, TLP:RED included: "
                    "rules must say which TLPs they take)"
                    if match.tlps is None
                    else ""
                )
                raise PolicyError(f'{where}: {_ceiling(tlp)}, not "{target.written}"{hint}')
