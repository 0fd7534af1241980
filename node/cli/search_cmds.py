"""`gcn search` and `gcn alerts`: the officer's questions to `NodeService.Search`.

`gcn search [TEXT] [flags]` asks this node and, unless `--local`, its hubs
under one deadline, and prints the page of results, one status line per
source and the command for the next page. `gcn alerts` lists the alerts in
force on a day (today, UTC, unless `--on`), every page up to `MAX_ALERTS`,
highest priority first, then newest. What each query field accepts is the
node's rule (node/domain/search_query.py); a field it refuses is named as
`query.FIELD` on one line, exit 2.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import click

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from gcn.v1 import search_pb2 as spb
from node.cli import forms
from node.cli.errors import CliError
from node.cli.options import Client, client_options, json_option

MAX_PAGE = 100
MAX_ALERTS = 500
ALERTS_PAGE = MAX_PAGE  # per call of `gcn alerts`
MIN_DEADLINE, MAX_DEADLINE, DEFAULT_DEADLINE = 0.1, 30.0, 3.0
_ROLES = ("origin", "export", "transit", "destination", "seizing", "party")
_KINDS = {"seizure": epb.RECORD_KIND_SEIZURE, "alert": epb.RECORD_KIND_ALERT}
# The query flags, in the order the next-page command repeats them: (flag, attribute).
_QUERY_FLAGS = (
    ("--container", "container"),
    ("--vessel", "vessel"),
    ("--flight", "flight"),
    ("--company", "company"),
    ("--person", "person"),
    ("--species", "species"),
    ("--hs", "hs"),
    ("--commodity", "commodity"),
    ("--country", "country"),
    ("--as", "country_role"),
    ("--port", "port"),
    ("--from", "date_from"),
    ("--to", "date_to"),
    ("--operation", "operation"),
    ("--tlp", "tlp"),
    ("--kind", "kind"),
    ("--origin", "origin"),
)

# The fields the node names in its errors, and the flags that set them.
_FLAG_OF = {
    "query.text": "TEXT",
    "query.container_number": "--container",
    "query.vessel": "--vessel",
    "query.flight": "--flight",
    "query.company": "--company",
    "query.person": "--person",
    "query.species": "--species",
    "query.hs_code_prefix": "--hs",
    "query.country": "--country",
    "query.country_role": "--as",
    "query.port": "--port",
    "query.date_from": "--from",
    "query.date_to": "--to",
    "query.operation_code": "--operation",
    "query.origin": "--origin",
    "query.in_force_on": "--on",
    "page_token": "--page",
    "page_size": "--limit",
    "deadline_ms": "--deadline",
}
_FIELD = re.compile(r"^invalid argument: ([a-z_.]+):")


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _deadline_ms(seconds: float) -> int:
    if not MIN_DEADLINE <= seconds <= MAX_DEADLINE:
        raise CliError(
            f"--deadline: must be between {MIN_DEADLINE:g} and {MAX_DEADLINE:g} seconds (got {seconds:g})"
        )
    return round(seconds * 1000)


def _page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise CliError(f"--limit: must be between 1 and {MAX_PAGE} (got {limit})")
    return limit


@dataclass(frozen=True)
class SearchArgs:
    """What `gcn search` was asked: the query flags, then how to ask."""

    text: list[str] = field(default_factory=list)
    container: str | None = None
    vessel: str | None = None
    flight: str | None = None
    company: str | None = None
    person: str | None = None
    species: str | None = None
    hs: str | None = None
    commodity: str | None = None
    country: str | None = None
    country_role: str | None = None
    port: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    operation: str | None = None
    tlp: str | None = None
    kind: str | None = None
    origin: str | None = None
    hide_retracted: bool = False
    local: bool = False
    deadline: float = DEFAULT_DEADLINE
    limit: int = 20
    page: str | None = None
    as_json: bool = False

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> SearchArgs:
        """From a command's parameters (the client options left out)."""
        given = {f.name: params[f.name] for f in fields(cls) if f.name in params}
        given["text"] = list(given.get("text") or [])
        return cls(**given)


def query_from_flags(a: SearchArgs) -> spb.SearchQuery:
    """The SearchQuery the flags ask for; enum names checked here, the rest by the node."""
    q = spb.SearchQuery(
        text=" ".join(a.text or []),
        container_number=a.container or "",
        vessel=a.vessel or "",
        flight=a.flight or "",
        company=a.company or "",
        person=a.person or "",
        species=a.species or "",
        hs_code_prefix=a.hs or "",
        country=a.country or "",
        port=a.port or "",
        date_from=a.date_from or "",
        date_to=a.date_to or "",
        operation_code=a.operation or "",
        origin=a.origin or "",
        hide_retracted=a.hide_retracted,
    )
    if a.commodity:
        q.commodity = forms.enum_value(rec.Commodity, "COMMODITY_", a.commodity, "--commodity")  # type: ignore[assignment]
    if a.tlp:
        q.tlp = forms.enum_value(rec.TLP, "TLP_", a.tlp, "--tlp")  # type: ignore[assignment]
    if a.kind:
        q.kind = _KINDS[a.kind]
    if a.country_role:
        if not a.country:
            raise CliError("--as: needs --country (the country that plays this role)")
        q.country_role = spb.CountryRole.Value(f"COUNTRY_ROLE_{a.country_role.upper()}")
    return q


def with_flag(message: str) -> str:
    """The node's `query.FIELD: rule` with the flag that sets FIELD:
    `query.container_number (--container): must be …`."""
    m = _FIELD.search(message)
    if m is None or m.group(1) not in _FLAG_OF:
        return message
    return f"{message[: m.end(1)]} ({_FLAG_OF[m.group(1)]}){message[m.end(1) :]}"


def _search(stub: Any, req: npb.SearchRequest) -> npb.SearchResponse:
    from node.cli.client import call

    # The node answers by its deadline; the call's own timeout leaves it room to do so.
    try:
        reply: npb.SearchResponse = call(stub.Search, req, timeout=req.deadline_ms / 1000 + 10)
    except CliError as e:
        raise type(e)(with_flag(str(e))) from e
    return reply


def shell_lines(words: list[str], width: int) -> list[str]:
    """`words` as a shell command in lines of at most `width` (a word longer
    than that alone on its line), continued with a backslash, indented."""
    lines: list[str] = []
    line = ""
    for word in (shlex.quote(w) for w in words):
        indent = "  " if not lines else "    "
        if line and len(indent) + len(line) + 1 + len(word) + 2 > width:
            lines.append(line)
            line = ""
        line = f"{line} {word}" if line else word
    lines.append(line)
    return [
        ("  " if i == 0 else "    ") + text + (" \\" if i < len(lines) - 1 else "")
        for i, text in enumerate(lines)
    ]


def next_page_command(a: SearchArgs, token: str) -> list[str]:
    """The `gcn search` command line for the next page: the same query flags
    (never the client flags: a token must not land in a shell history)."""
    dashed = any(w.startswith("-") for w in a.text)  # then after `--`, where no flag may follow
    words = ["gcn", "search", *([] if dashed else a.text)]
    for flag, attr in _QUERY_FLAGS:
        value = getattr(a, attr)
        if value:
            words += [flag, value]
    if a.hide_retracted:
        words.append("--hide-retracted")
    if a.local:
        words.append("--local")
    if a.deadline != DEFAULT_DEADLINE:
        words += ["--deadline", f"{a.deadline:g}"]
    words += ["--limit", str(a.limit), "--page", token]
    return [*words, "--", *a.text] if dashed else words


def run_search(client: Client, a: SearchArgs) -> int:
    """One page of `gcn search`, printed."""
    from node.cli import render, search_render

    req = npb.SearchRequest(
        query=query_from_flags(a),
        page_size=_page_size(a.limit),
        page_token=a.page or "",
        local_only=a.local,
        deadline_ms=_deadline_ms(a.deadline),
    )
    resp = _search(client.stub(), req)
    if a.as_json:
        out = {
            "hits": [render.as_dict(h) for h in resp.hits],
            "sources": [search_render.source_dict(s) for s in resp.sources],
            "next_page_token": resp.next_page_token,
        }
        json.dump(out, sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    n = len(resp.hits)
    title = f"{n} result{'' if n == 1 else 's'}" + (
        " (more on the next page)" if resp.next_page_token else ""
    )
    if resp.hits:
        search_render.hits_table(list(resp.hits), title)
    else:
        render.console.print("no results")
    for s in resp.sources:
        render.console.print(search_render.source_line(s))
    if resp.next_page_token:
        render.console.print("next page:")
        for line in shell_lines(next_page_command(a, resp.next_page_token), render.console.width):
            render.console.print(line, soft_wrap=True)
    return 0


def _priority_then_newest(h: npb.SearchHit) -> tuple[int, int, int]:
    from node.cli import search_render

    body = search_render.body_of(h.record)
    priority = body.priority if isinstance(body, rec.Alert) else 0
    return (-priority, -h.record.created_at.seconds, -h.record.created_at.nanos)


def _common(f: Any) -> Any:
    f = click.option(
        "--deadline",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_DEADLINE,
        help=f"seconds the whole search may take, hubs included ({MIN_DEADLINE:g} to {MAX_DEADLINE:g}, "
        f"default {DEFAULT_DEADLINE:g}); a hub that has not answered by then is named 'timeout'",
    )(f)
    return click.option("--local", is_flag=True, help="ask this node only, not its hubs")(f)


@click.command()
@click.option("--on", metavar="DATE", help="the day to ask about, YYYY-MM-DD (default: today, UTC)")
@_common
@client_options
@json_option()
def alerts(client: Client, on: str | None, local: bool, deadline: float, as_json: bool) -> int:
    """The alerts in force on a day (today, UTC, unless --on), highest priority first."""
    from node.cli import render, search_render

    day = on or _today()
    query = spb.SearchQuery(kind=epb.RECORD_KIND_ALERT, in_force_on=day, hide_retracted=True)
    node = client.stub()
    hits: list[npb.SearchHit] = []
    trouble: dict[str, npb.SourceStatus] = {}
    token, truncated = "", False
    while True:
        req = npb.SearchRequest(
            query=query,
            page_size=ALERTS_PAGE,
            page_token=token,
            local_only=local,
            deadline_ms=_deadline_ms(deadline),
        )
        resp = _search(node, req)
        hits += resp.hits
        for s in resp.sources:
            if s.state != npb.SourceStatus.STATE_OK or s.rejected:
                trouble.setdefault(s.source, s)
        token = resp.next_page_token
        if not token:
            break
        if len(hits) >= MAX_ALERTS:
            truncated = True
            break
    hits = sorted(hits[:MAX_ALERTS], key=_priority_then_newest)
    if as_json:
        out = {
            "on": day,
            "alerts": [render.as_dict(h) for h in hits],
            "sources": [search_render.source_dict(s) for s in trouble.values()],
            "truncated": truncated,
        }
        json.dump(out, sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    if hits:
        n = len(hits)
        search_render.alerts_table(hits, f"{n} alert{'' if n == 1 else 's'} in force on {day}")
    else:
        render.console.print(f"no alerts in force on {day}")
    if truncated:
        render.console.print(f"only the first {MAX_ALERTS} shown: narrow with `gcn search --kind alert`")
    for s in trouble.values():
        render.console.print(search_render.source_line(s))
    return 0


@click.command()
@click.argument("text", nargs=-1, metavar="[TEXT]...")
@click.option(
    "--container", metavar="NUMBER", help="ISO 6346 container number; spaces ignored, check digit optional"
)
@click.option(
    "--vessel", metavar="IMO|NAME", help="an IMO number ('IMO 9074729') or words of the vessel's name"
)
@click.option("--flight", metavar="FLIGHT", help="IATA flight designator, e.g. KQ310")
@click.option("--company", metavar="NAME", help="words of a company's name (accents and order ignored)")
@click.option("--person", metavar="NAME", help="words of a person's name (accents and order ignored)")
@click.option("--species", metavar="NAME", help="scientific or common name, e.g. pangolin, Dalbergia")
@click.option("--hs", metavar="PREFIX", help="HS code prefix, 2 to 10 digits, e.g. 0507 or 4403.99")
@click.option("--commodity", metavar="NAME", help=forms.choices(rec.Commodity, "COMMODITY_"))
@click.option("--country", metavar="CC", help="ISO 3166-1 alpha-2 country, in any role unless --as")
@click.option(
    "--as",
    "country_role",
    type=click.Choice(_ROLES),
    help="the role of --country: route origin, export, transit or destination, "
    "the seizing country, or a party's country",
)
@click.option("--port", metavar="LOCODE", help="UN/LOCODE of the port, e.g. KEMBA")
@click.option(
    "--from", "date_from", metavar="DATE", help="from this date on, YYYY-MM-DD (alerts: creation date)"
)
@click.option("--to", "date_to", metavar="DATE", help="up to this date, YYYY-MM-DD")
@click.option("--operation", metavar="CODE", help="operation code; DEMETER also finds DEMETER-IX")
@click.option("--tlp", metavar="TLP", help="only records of this TLP: clear|green|amber|amber-strict|red")
@click.option("--kind", type=click.Choice(tuple(_KINDS)), help="only seizures or only alerts")
@click.option("--origin", metavar="NODE_ID", help="only records made by this node id, e.g. KE")
@click.option(
    "--hide-retracted", is_flag=True, help="leave retracted records out (shown, marked, by default)"
)
@_common
@click.option(
    "--limit", metavar="N", type=int, default=20, help=f"results per page (1 to {MAX_PAGE}, default 20)"
)
@click.option("--page", metavar="TOKEN", help="a page token a previous search printed (same query)")
@client_options
@json_option()
def search(client: Client, **params: Any) -> int:
    """Search this node and its hubs for seizures and alerts. TEXT: words in
    descriptions, concealment, notes, alert titles and indicators (each word a
    prefix, any order, accents ignored)."""
    return run_search(client, SearchArgs.of(params))
