"""What an officer searches for, checked: a `SearchQuery` message becomes a
`Query` of index criteria (`node.domain.index` terms), or a ValidationError
naming the field and the rule broken.

Every criterion must hold (AND). Names and free text are folded
(`node.domain.normalise`) and matched word by word: each word of the query is
a prefix of some word of the record, in any order. Identifiers (container,
IMO, flight, port) are compacted and matched whole; a container number
without its check digit matches any check digit.

`Query.matches` is the same rule over a record's terms, so a node can check
that what a hub answered is what it asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from google.protobuf.json_format import MessageToDict

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from gcn.v1 import search_pb2 as spb
from node.config import NODE_ID_RE
from node.domain import checks, index, normalise, validation
from node.errors import ValidationError

EQ, PREFIX, AT_LEAST = "eq", "prefix", "ge"
MAX_FIELD_CHARS = 256
MAX_WORDS = 8  # per text field of a query
MAX_CRITERIA = 32
_CONTAINER_BODY = re.compile(r"[A-Z]{3}[UJZ][0-9]{6}")
_IMO_SHAPE = re.compile(r"(IMO)?[0-9]{7}")
_ROLE_TERMS = {
    spb.COUNTRY_ROLE_ORIGIN: index.ORIGIN,
    spb.COUNTRY_ROLE_EXPORT: index.EXPORT,
    spb.COUNTRY_ROLE_TRANSIT: index.TRANSIT,
    spb.COUNTRY_ROLE_DESTINATION: index.DESTINATION,
    spb.COUNTRY_ROLE_SEIZING: index.SEIZING,
    spb.COUNTRY_ROLE_PARTY: index.PARTY,
}
_KINDS = {epb.RECORD_KIND_SEIZURE: "seizure", epb.RECORD_KIND_ALERT: "alert"}


@dataclass(frozen=True)
class Criterion:
    """One index term a record must have: `field` equal to `value`, starting
    with it (`PREFIX`), or at least it (`AT_LEAST`, ISO dates)."""

    field: str
    value: str
    op: str = EQ

    def holds(self, terms: set[tuple[str, str]]) -> bool:
        if self.op == EQ:
            return (self.field, self.value) in terms
        if self.op == PREFIX:
            return any(f == self.field and v.startswith(self.value) for f, v in terms)
        return any(f == self.field and v >= self.value for f, v in terms)


@dataclass(frozen=True)
class Query:
    criteria: tuple[Criterion, ...] = ()
    origin: str = ""
    tlp: int = 0
    date_from: date | None = None
    date_to: date | None = None
    hide_retracted: bool = False
    asked: dict[str, Any] = field(default_factory=dict, compare=False)  # the fields as given, for the audit

    def matches(self, terms: set[tuple[str, str]], origin: str, tlp: int, event_date: date) -> bool:
        """Does a record with these terms and facts answer this query?"""
        if self.origin and origin != self.origin:
            return False
        if self.tlp and tlp != self.tlp:
            return False
        if self.date_from and event_date < self.date_from:
            return False
        if self.date_to and event_date > self.date_to:
            return False
        return all(c.holds(terms) for c in self.criteria)


def _text(value: str, name: str) -> str:
    text = value.strip()
    if len(text) > MAX_FIELD_CHARS:
        raise ValidationError(name, f"must be at most {MAX_FIELD_CHARS} characters (got {len(text)})")
    return text


def _word_criteria(value: str, term: str, name: str) -> list[Criterion]:
    found = normalise.words(_text(value, name))
    if not found:
        raise ValidationError(name, f"has no letters or digits to search for (got {value.strip()[:40]!r})")
    if len(found) > MAX_WORDS:
        raise ValidationError(name, f"must be at most {MAX_WORDS} words (got {len(found)})")
    return [Criterion(term, w, PREFIX) for w in found]


def _container(value: str, name: str) -> Criterion:
    code = normalise.compact(_text(value, name))
    if _CONTAINER_BODY.fullmatch(code):  # no check digit: any
        return Criterion(index.CONTAINER, code, PREFIX)
    return Criterion(index.CONTAINER, validation.check_container_number(code, name))


def _vessel(value: str, name: str) -> list[Criterion]:
    text = _text(value, name)
    if _IMO_SHAPE.fullmatch(normalise.compact(text)):
        return [Criterion(index.IMO, validation.check_imo(normalise.compact(text), name))]
    return _word_criteria(text, index.VESSEL_WORD, name)


def parse_query(q: spb.SearchQuery, prefix: str = "query") -> Query:
    """The query's criteria, or a ValidationError naming `prefix.field`."""

    def n(field_name: str) -> str:
        return f"{prefix}.{field_name}" if prefix else field_name

    c: list[Criterion] = []
    if q.text:
        c += _word_criteria(q.text, index.TEXT_WORD, n("text"))
    c += _identifiers(q, n)
    c += _country(q, n)
    if q.kind:
        if q.kind not in _KINDS:
            raise ValidationError(
                n("kind"), "must be SEIZURE or ALERT (corrections count as what they correct)"
            )
        c.append(Criterion(index.KIND, _KINDS[q.kind]))
    if q.in_force_on:
        day = validation.check_date(q.in_force_on, n("in_force_on"))
        c.append(Criterion(index.VALID_UNTIL, day.isoformat(), AT_LEAST))
    if q.tlp and q.tlp not in rec.TLP.values():
        raise ValidationError(n("tlp"), f"{q.tlp} is not a known TLP")
    if q.order not in spb.SearchOrder.values():
        raise ValidationError(n("order"), f"{q.order} is not a known order")
    origin = q.origin.strip().upper()
    if origin and not NODE_ID_RE.fullmatch(origin):
        raise ValidationError(n("origin"), f"must be a node id like KE or KE-MBA (got {origin[:64]!r})")
    date_from = validation.check_date(q.date_from, n("date_from")) if q.date_from else None
    date_to = validation.check_date(q.date_to, n("date_to")) if q.date_to else None
    if date_from and date_to and date_from > date_to:
        raise ValidationError(n("date_to"), f"must not be before date_from ({date_from})")
    unique = tuple(dict.fromkeys(c))
    if len(unique) > MAX_CRITERIA:
        raise ValidationError(prefix or "query", f"asks for at most {MAX_CRITERIA} terms (got {len(unique)})")
    return Query(
        criteria=unique,
        origin=origin,
        tlp=q.tlp,
        date_from=date_from,
        date_to=date_to,
        hide_retracted=q.hide_retracted,
        asked=MessageToDict(q, preserving_proto_field_name=True),
    )


def _identifiers(q: spb.SearchQuery, n: Callable[[str], str]) -> list[Criterion]:
    c: list[Criterion] = []
    if q.container_number:
        c.append(_container(q.container_number, n("container_number")))
    if q.vessel:
        c += _vessel(q.vessel, n("vessel"))
    if q.flight:
        c.append(Criterion(index.FLIGHT, checks.check_flight(_text(q.flight, n("flight")), n("flight"))))
    if q.company:
        c += _word_criteria(q.company, index.COMPANY_WORD, n("company"))
    if q.person:
        c += _word_criteria(q.person, index.PERSON_WORD, n("person"))
    if q.species:
        c += _word_criteria(q.species, index.SPECIES_WORD, n("species"))
    if q.hs_code_prefix:
        hs = validation.check_hs_code(
            _text(q.hs_code_prefix, n("hs_code_prefix")), n("hs_code_prefix"), prefix=True
        )
        c.append(Criterion(index.HS, hs, PREFIX))
    if q.commodity:
        if q.commodity not in rec.Commodity.values():
            raise ValidationError(n("commodity"), f"{q.commodity} is not a known commodity")
        c.append(Criterion(index.COMMODITY, rec.Commodity.Name(q.commodity)))
    if q.port:
        c.append(Criterion(index.PORT, validation.check_locode(_text(q.port, n("port")), n("port"))))
    if q.operation_code:
        code = index.operation_base(_text(q.operation_code, n("operation_code")).upper())
        if not code:
            raise ValidationError(n("operation_code"), "has no letters or digits to search for")
        c.append(Criterion(index.OPERATION, code))
    return c


def _country(q: spb.SearchQuery, n: Any) -> list[Criterion]:
    if not q.country:
        if q.country_role:
            raise ValidationError(n("country_role"), "needs a country")
        return []
    country = validation.check_country(q.country.strip().upper(), n("country"))
    if q.country_role == spb.COUNTRY_ROLE_ANY:
        return [Criterion(index.COUNTRY, country)]
    if q.country_role not in _ROLE_TERMS:
        raise ValidationError(n("country_role"), f"{q.country_role} is not a known country role")
    return [Criterion(index.COUNTRY_ROLE, f"{_ROLE_TERMS[q.country_role]}:{country}")]


def is_empty(q: Query) -> bool:
    return not (q.criteria or q.origin or q.tlp or q.date_from or q.date_to)
