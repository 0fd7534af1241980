"""`gcn stats`: CEN-style statistics of the seizures this node can read (a hub's
regional or global picture; any node's own picture)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from node.cli.options import config_option, json_option, load
from node.cli.words import plural

if TYPE_CHECKING:
    from rich.table import Table

    from gcn.v1 import records_pb2 as rec
    from node.app import NodeApp
    from rinex.aggregate import Cell


def _seizures(app: NodeApp) -> Iterator[rec.Seizure]:
    """Every active seizure readable here, once (its best view), corrections as their new version."""
    from gcn.v1 import envelope_pb2 as epb
    from gcn.v1 import node_pb2 as npb

    seen: set[str] = set()
    token = ""
    while True:
        page = app.reader.list(npb.ListRecordsRequest(page_size=500, page_token=token))
        for r in page.records:
            if r.record_id in seen:
                continue
            seen.add(r.record_id)
            if r.kind == epb.RECORD_KIND_SEIZURE and r.HasField("seizure"):
                yield r.seizure
            elif r.kind == epb.RECORD_KIND_CORRECTION and r.correction.HasField("seizure"):
                yield r.correction.seizure
        token = page.next_page_token
        if not token:
            return


def _rounded(cell: dict[str, Any]) -> dict[str, Any]:
    """Sums of floats as a person reads them (2483.32, not 2483.3199999999997)."""
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in cell.items()}


def _table(title: str, cells: dict[str, Cell]) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for col in ("", "seizures", "items", "kg", "other", "CO2e t"):
        table.add_column(col, justify="right" if col else "left")
    for key in sorted(cells):
        c = cells[key]
        other = ", ".join(f"{v:g} {u}" for u, v in sorted(c.other_units.items()))
        table.add_row(
            key, str(c.seizures), str(c.items), f"{c.kilograms:,.1f}", other, f"{c.co2e_tonnes:,.1f}"
        )
    return table


@click.command()
@config_option()
@json_option('print {"seizures", "by_commodity", "by_country", "by_month"} as JSON')
def stats(config: str | None, as_json: bool) -> int:
    """CEN-style statistics of the seizures this node can read."""
    from node.admin import open_node
    from node.cli import render
    from rinex.aggregate import aggregate

    with open_node(load(config)) as app:
        figures = aggregate(_seizures(app))
    if as_json:
        out: dict[str, Any] = {"seizures": figures.seizures}
        for name in ("by_commodity", "by_country", "by_month"):
            out[name] = {k: _rounded(asdict(v)) for k, v in getattr(figures, name).items()}
        json.dump(out, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    render.console.print(f"{plural(figures.seizures, 'seizure')} readable on {app.config.node.id}")
    render.console.print(_table("by commodity", figures.by_commodity))
    render.console.print(_table("by country of the incident", figures.by_country))
    render.console.print(_table("by month", figures.by_month))
    return 0
