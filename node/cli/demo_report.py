"""The demo's report: what was recorded where, what reached whom in which
view, the port's cut, the searches with their sources, the timings — short,
in 80 columns (rich tables without borders)."""

from __future__ import annotations

import shlex
from typing import Any

from rich.console import Console
from rich.table import Table

from node.cli.demo_story import Story

WIDTH = 80
SHORT = {"WCO-GLOBAL": "WCO", "RINEX-ESA": "ESA", "RINEX-SEA": "SEA", "KE-MBA": "MBA"}
CELL = {"VIEW_FULL": "F", "VIEW_REDACTED": "R", "VIEW_STATISTICAL": "S"}
VIEW_WORD = {"VIEW_FULL": "full", "VIEW_REDACTED": "redacted", "VIEW_STATISTICAL": "statistical"}


def console() -> Console:
    return Console(width=min(WIDTH, Console().width), highlight=False)


def _table(*columns: str) -> Table:
    t = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False, header_style="bold")
    for c in columns:
        t.add_column(c, no_wrap=True)
    return t


def _labels(story: Story, records: dict[str, str]) -> dict[str, str]:
    return {records[s.key]: s.label for s in story.samples if s.key in records}


def _hit_label(hit: dict[str, Any], labels: dict[str, str]) -> str:
    r = hit["record"]
    if r["record_id"] in labels:
        return labels[r["record_id"]]
    body = r.get("seizure") or r.get("alert") or {}
    goods = body.get("goods", [{}])
    return str(body.get("title") or goods[0].get("description") or r.get("kind", "record"))[:24]


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _source(s: dict[str, Any]) -> str:
    return (
        f"{SHORT.get(s['source'], s['source'])} {s['state']} {s.get('count', 0)} in {s.get('millis', 0)} ms"
    )


def print_report(
    out: Console, story: Story, records: dict[str, str], timings: list[tuple[str, float]], nodes: list[str]
) -> None:
    _recorded(out, story, records, nodes)
    _cut(out, story)
    _searches(out, story, _labels(story, records))
    out.print()
    out.rule("[bold]How long it took", align="left")
    out.print(" · ".join(f"{what} {sec:.0f} s" for what, sec in timings))


def _recorded(out: Console, story: Story, records: dict[str, str], nodes: list[str]) -> None:
    out.print()
    out.rule("[bold]What was recorded where", align="left")
    t = _table("record", "recorded at", "TLP", "id", "")
    for s in story.samples:
        rid = records.get(s.key, "")
        t.add_row(s.label, s.origin, s.tlp, rid[:8], "new" if s.key in story.new else "earlier run")
    out.print(t)

    out.print()
    out.rule("[bold]What reached whom (F full, R redacted, S statistical, · none)", align="left")
    t = _table("record", *(SHORT.get(n, n) for n in nodes))
    for s in story.samples:
        rid = records.get(s.key, "")
        t.add_row(s.label, *(CELL.get(story.views.get(n, {}).get(rid, ""), "·") for n in nodes))
    for col in t.columns[1:]:
        col.justify = "center"
    out.print(t)
    out.print(
        "[dim]The default policy: a TLP:GREEN seizure goes in full to its administration, "
        "redacted to its RINEX region, as statistics to every member; TLP:AMBER stays "
        "with the administration; a green alert goes in full to the region, redacted beyond."
    )
    if story.spread_missing:
        out.print(f"[yellow]not arrived within the wait: {', '.join(story.spread_missing[:6])}")


def _cut(out: Console, story: Story) -> None:
    out.print()
    out.rule("[bold]The port cut off and back", align="left")
    cut_new = [s for s in story.samples if s.phase == "cut" and s.key in story.new]
    recorded = (
        f"the port recorded {len(cut_new)} seizure{'s' if len(cut_new) != 1 else ''} meanwhile"
        if cut_new
        else "its seizure was recorded on an earlier run"
    )
    out.print(f"link KE-MBA ↔ KE cut for {_seconds(story.cut_seconds)}; {recorded}.")
    said = "down" if story.port_saw_down else "not yet down"
    line = f"while cut: KE-MBA's `gcn sync status` said KE {said}"
    if cut_new:
        line += f"; at the global hub: {'yes' if story.at_hub_while_cut else 'no'}"
    out.print(line + ".")
    link = f"its link to KE up in {_seconds(story.link_back_seconds)}"
    if story.backlog_seconds is not None:
        out.print(f"restored: its records at the global hub in {_seconds(story.backlog_seconds)}, {link}.")
    else:
        out.print(f"restored: {link}.")


def _searches(out: Console, story: Story, labels: dict[str, str]) -> None:
    out.print()
    out.rule("[bold]Searches (as the officer at each node would type them)", align="left")
    for search, reply in story.searches:
        out.print(f"[bold]at {search.at}[/bold]: {search.why}")
        out.print(f"  $ gcn search {shlex.join(search.args)}")
        hits = reply.get("hits", [])
        t = _table("", "", "", "")
        t.show_header = False
        for hit in hits[:6]:
            r = hit["record"]
            found = ", ".join(SHORT.get(x, x) for x in hit.get("sources", []))
            t.add_row(
                "   " + _hit_label(hit, labels),
                r["origin"],
                VIEW_WORD.get(r.get("view", ""), "?"),
                f"from {found}",
            )
        if hits:
            out.print(t)
        if len(hits) > 6:
            out.print(f"    … and {len(hits) - 6} more")
        sources = ", ".join(_source(s) for s in reply.get("sources", []))
        out.print(f"  {len(hits)} result{'s' if len(hits) != 1 else ''}; asked {sources}")
