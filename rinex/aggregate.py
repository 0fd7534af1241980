"""CEN-style statistics over the seizures a hub can read (pure).

Counts and quantities per commodity, per country (of the incident) and per
month, with the CO2-equivalent of ODS seizures: what the statistical view
carries, so a global hub holding only statistical views computes the same
figures as one holding full records. Retracted and superseded records are
left out by the caller (it passes only active ones).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from gcn.v1 import records_pb2 as rec

_TO_KG = {rec.UNIT_KG: 1.0, rec.UNIT_G: 0.001, rec.UNIT_TONNE: 1000.0}


@dataclass
class Cell:
    seizures: int = 0
    items: int = 0
    kilograms: float = 0.0  # items given in a mass unit
    other_units: dict[str, float] = field(default_factory=dict)
    co2e_tonnes: float = 0.0


@dataclass
class Statistics:
    by_commodity: dict[str, Cell] = field(default_factory=lambda: defaultdict(Cell))
    by_country: dict[str, Cell] = field(default_factory=lambda: defaultdict(Cell))
    by_month: dict[str, Cell] = field(default_factory=lambda: defaultdict(Cell))
    seizures: int = 0


def _commodity(c: int) -> str:
    return rec.Commodity.Name(rec.Commodity.ValueType(c)).removeprefix("COMMODITY_").lower()


def _add(cell: Cell, item: rec.GoodsItem) -> None:
    cell.items += 1
    factor = _TO_KG.get(item.quantity.unit)
    if factor is not None:
        cell.kilograms += item.quantity.value * factor
    else:
        unit = rec.Unit.Name(item.quantity.unit).removeprefix("UNIT_").lower()
        cell.other_units[unit] = cell.other_units.get(unit, 0.0) + item.quantity.value
    cell.co2e_tonnes += item.co2e_tonnes


def aggregate(seizures: Iterable[rec.Seizure]) -> Statistics:
    stats = Statistics()
    for s in seizures:
        stats.seizures += 1
        month = s.incident_date[:7]
        cells_for_seizure = {id(c): c for c in (stats.by_country[s.place.country], stats.by_month[month])}
        for c in cells_for_seizure.values():
            c.seizures += 1
        commodities = set()
        for item in s.goods:
            name = _commodity(item.commodity)
            commodities.add(name)
            _add(stats.by_commodity[name], item)
            _add(stats.by_country[s.place.country], item)
            _add(stats.by_month[month], item)
        for name in commodities:
            stats.by_commodity[name].seizures += 1
    return stats
