"""The bounds of node/limits.py: what validation refuses (naming the field and
the rule), and that what it accepts can always be read back (GetRecord and
ListRecords over real gRPC on loopback, on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from gcn.v1 import records_pb2 as rec
from node import limits, samples
from node.config import load_config
from node.errors import ConfigError, ValidationError
from node.validation import check_alert, check_seizure
from node.validation_pool import check_inline

TODAY = date(2026, 11, 28)
Mutator = Callable[[rec.Seizure], None]
AlertMutator = Callable[[rec.Alert], None]


def _goods(s: rec.Seizure, n: int) -> None:
    item = rec.GoodsItem()
    item.CopyFrom(s.goods[0])
    del s.goods[:]
    s.goods.extend([item] * n)


def _parties(s: rec.Seizure, n: int) -> None:
    party = rec.Party()
    party.CopyFrom(s.parties[0])
    del s.parties[:]
    s.parties.extend([party] * n)


def _permits(s: rec.Seizure, n: int) -> None:
    del s.documents.permits[:]
    s.documents.permits.extend([rec.Permit(type=rec.PERMIT_TYPE_CITES, number="KE-1")] * n)


def _transit(s: rec.Seizure, n: int) -> None:
    s.route.transit_countries[:] = ["MY"] * n


def _ods(s: rec.Seizure, value: float, unit: rec.Unit.ValueType = rec.UNIT_TONNE) -> None:
    s.CopyFrom(samples.hcfc_seizure(TODAY))
    s.goods[0].quantity.value = value
    s.goods[0].quantity.unit = unit


def _many_ods(s: rec.Seizure) -> None:
    _ods(s, 1e304)  # each line's CO2e is finite, their sum is not
    _goods(s, 1000)


def _set(path: str, value: str) -> Mutator:
    def mutate(s: rec.Seizure) -> None:
        *parents, name = path.split(".")
        target = s
        for p in parents:
            target = getattr(target, p[:-3])[int(p[-2])] if p.endswith("]") else getattr(target, p)
        setattr(target, name, value)

    return mutate


SEIZURE_BOUNDS = [
    pytest.param(
        lambda s: _goods(s, 60_000), "goods", "must list at most 1000 items (got 60000)", id="goods"
    ),
    pytest.param(lambda s: _parties(s, 40_000), "parties", "at most 200 parties (got 40000)", id="parties"),
    pytest.param(lambda s: _permits(s, 201), "documents.permits", "at most 200 permits", id="permits"),
    pytest.param(lambda s: _transit(s, 31), "route.transit_countries", "at most 30", id="transit"),
    pytest.param(
        lambda s: _ods(s, 1e308), "goods[0].quantity.value", "CO2-equivalent", id="co2e-overflows-one-item"
    ),
    pytest.param(_many_ods, "goods", "add up to a finite number", id="co2e-total"),
    pytest.param(_set("notes", "seized\x00"), "notes", "U+0000 at character 6", id="nul-in-notes"),
    pytest.param(_set("notes", "\x1b[2Jgone"), "notes", "control characters", id="escape-in-notes"),
    pytest.param(_set("notes", "a\rb"), "notes", "U+000D", id="bare-cr-in-notes"),
    pytest.param(_set("notes", "a\u202eb"), "notes", "U+202E", id="bidi-override-in-notes"),
    pytest.param(
        _set("parties[0].name", "Sesame\nTraders"), "parties[0].name", "U+000A", id="newline-in-name"
    ),
    pytest.param(_set("parties[0].name", "Sesame\tTraders"), "parties[0].name", "U+0009", id="tab-in-name"),
    pytest.param(_set("conveyance.vessel_name", "MSC\x7f"), "conveyance.vessel_name", "U+007F", id="del"),
    pytest.param(_set("concealment", "x\x85y"), "concealment", "U+0085", id="c1-in-concealment"),
    pytest.param(
        _set("goods[0].description", "tusks\x07"), "goods[0].description", "U+0007", id="bell-in-description"
    ),
    pytest.param(
        _set("documents.bill_of_lading", "ME\u2028DU"), "documents.bill_of_lading", "U+2028", id="line-sep"
    ),
]


@pytest.mark.parametrize(("mutate", "field", "rule"), SEIZURE_BOUNDS)
def test_a_seizure_beyond_a_bound_is_refused_naming_the_field(mutate: Mutator, field: str, rule: str) -> None:
    seizure = samples.ivory_seizure(TODAY)
    mutate(seizure)
    with pytest.raises(ValidationError) as err:
        check_seizure(seizure, TODAY)
    assert err.value.field == field
    assert rule in err.value.rule


def _subjects(a: rec.Alert, n: int) -> None:
    subject = rec.AlertSubject()
    subject.CopyFrom(a.subjects[0])
    del a.subjects[:]
    a.subjects.extend([subject] * n)


def _route(a: rec.Alert, hops: int) -> None:
    del a.subjects[:]
    a.subjects.add(kind=rec.SUBJECT_KIND_ROUTE, value=">".join(["CN"] * hops))


ALERT_BOUNDS = [
    pytest.param(
        lambda a: _subjects(a, 20_000), "subjects", "at most 200 subjects (got 20000)", id="subjects"
    ),
    pytest.param(lambda a: _route(a, 33), "subjects[0].value", "at most 32 countries", id="route-hops"),
    pytest.param(
        lambda a: setattr(a, "title", "MSC\x1b]0;pwned\x07"), "title", "U+001B", id="escape-in-title"
    ),
    pytest.param(lambda a: setattr(a, "title", "two\nlines"), "title", "U+000A", id="newline-in-title"),
    pytest.param(lambda a: a.indicators.append("x\x00"), "indicators[2]", "U+0000", id="nul-in-indicator"),
    pytest.param(lambda a: setattr(a, "notes", "\x00"), "notes", "U+0000", id="nul-in-notes"),
]


@pytest.mark.parametrize(("mutate", "field", "rule"), ALERT_BOUNDS)
def test_an_alert_beyond_a_bound_is_refused_naming_the_field(
    mutate: AlertMutator, field: str, rule: str
) -> None:
    alert = samples.vessel_alert(TODAY)
    mutate(alert)
    with pytest.raises(ValidationError) as err:
        check_alert(alert, TODAY)
    assert err.value.field == field
    assert rule in err.value.rule


def test_tabs_and_newlines_stay_in_multi_line_text_and_crlf_becomes_a_newline() -> None:
    seizure = samples.ivory_seizure(TODAY)
    seizure.notes = "line one\r\n\tline two\nline three"
    seizure.place.description = "shed 3\nbay 4"
    seizure.goods[0].description = "tusks:\n\t12 whole"
    checked = check_seizure(seizure, TODAY)
    assert checked.notes == "line one\n\tline two\nline three"
    assert checked.place.description == "shed 3\nbay 4"
    assert checked.goods[0].description == "tusks:\n\t12 whole"


def test_names_in_other_scripts_are_text_not_control_characters() -> None:
    seizure = samples.ivory_seizure(TODAY)
    persian = "\u0634\u0631\u06a9\u062a\u200c\u062a\u062c\u0627\u0631\u06cc Ltd"  # with a ZWNJ
    seizure.parties[0].name = persian
    seizure.notes = "象牙 — 452,5 kg"
    assert check_seizure(seizure, TODAY).parties[0].name == persian


def _largest_seizure() -> rec.Seizure:
    """A seizure just within MAX_RECORD_BYTES: the notes and many goods lines at
    their longest in 4-byte characters, then lines of ASCII up to the bound."""
    seizure = samples.ivory_seizure(TODAY)
    seizure.notes = "\U0001d535" * 10_000
    item = seizure.goods[0]
    item.description = "\U0001d535" * 500
    seizure.goods.extend([item] * 399)
    filler = rec.GoodsItem()
    filler.CopyFrom(item)
    filler.description = "x" * 500
    while seizure.ByteSize() + filler.ByteSize() + 3 <= limits.MAX_RECORD_BYTES:
        seizure.goods.append(filler)
    return seizure


def test_a_record_beyond_the_byte_bound_is_refused_as_a_whole() -> None:
    seizure = _largest_seizure()
    assert check_seizure(seizure, TODAY).ByteSize() <= limits.MAX_RECORD_BYTES
    seizure.goods.append(seizure.goods[0])
    with pytest.raises(ValidationError) as err:
        check_seizure(seizure, TODAY)
    assert err.value.field == "seizure"
    assert f"at most {limits.MAX_RECORD_BYTES} bytes serialized" in err.value.rule
    with pytest.raises(ValidationError) as in_batch:
        check_inline([samples.ivory_seizure(TODAY), seizure], TODAY, 0)
    assert in_batch.value.field == "seizures[1]"


def test_max_message_bytes_cannot_be_set_below_a_maximal_reply(tmp_path: Path) -> None:
    path = tmp_path / "gcn.toml"
    path.write_text('[node]\nid = "KE"\nname = "KE"\nrole = "national"\ncountry = "KE"\n')
    assert load_config(path, env={}).server.max_message_bytes >= limits.MIN_MESSAGE_BYTES
    with pytest.raises(ConfigError, match=f"at least {limits.MIN_MESSAGE_BYTES}"):
        load_config(path, env={"GCN_SERVER_MAX_MESSAGE_BYTES": str(limits.MIN_MESSAGE_BYTES - 1)})
    assert load_config(path, env={"GCN_SERVER_MAX_MESSAGE_BYTES": str(limits.MIN_MESSAGE_BYTES)})
