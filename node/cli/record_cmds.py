"""`gcn seizure …`, `gcn alert add`, `gcn records list|show`, `gcn retract`,
`gcn correct`: an officer's records, over the node's officer API (the client
options of `node.cli.options`)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import click

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from node.cli import forms
from node.cli.options import Client, client_options, json_option
from node.cli.words import plural

_PARTY = "NAME:ROLE[:COUNTRY], ROLE one of " + forms.choices(rec.PartyRole, "PARTY_ROLE_")
_TLP = "clear|green|amber|amber-strict|red"


def _record(as_json: bool, reply: Any) -> int:
    from node.cli import render

    if as_json:
        render.print_json(reply)
    else:
        render.recorded(reply)
    return 0


# -- gcn seizure -----------------------------------------------------------------------------


@click.group()
def seizure() -> None:
    pass


def _seizure_options(f: Any) -> Any:
    options = (
        click.option("--file", help="a gcn.v1.Seizure as JSON ('-' for stdin); flags are then ignored"),
        click.option("--date", help="incident date YYYY-MM-DD"),
        click.option("--country", help="incident country (ISO 3166-1 alpha-2)"),
        click.option("--port", help="UN/LOCODE of the port, e.g. KEMBA"),
        click.option("--direction", help="import|export|transit"),
        click.option("--detection", help=forms.choices(rec.DetectionMethod, "DETECTION_METHOD_")),
        click.option("--commodity", help=forms.choices(rec.Commodity, "COMMODITY_")),
        click.option("--description", help="what the goods are"),
        click.option("--hs", help="HS code, 6 to 10 digits"),
        click.option("--species", help="scientific name, e.g. 'Loxodonta africana'"),
        click.option("--cites", help="CITES appendix: i|ii|iii"),
        click.option("--ods", help="ODS substance, e.g. HCFC-22"),
        click.option("--basel", help="Basel waste code, e.g. A1180"),
        click.option("--quantity", help="quantity and unit, e.g. '450 kg'"),
        click.option("--value", help="declared value and currency, e.g. '1200 USD'"),
        click.option("--mode", help=forms.choices(rec.TransportMode, "TRANSPORT_MODE_")),
        click.option("--imo", help="vessel IMO number"),
        click.option("--vessel", help="vessel name"),
        click.option("--flight", help="flight number, e.g. KQ310"),
        click.option("--container", multiple=True, help="ISO 6346 container number (repeatable)"),
        click.option("--origin-country", help="country the goods came from (ISO 3166-1 alpha-2)"),
        click.option("--destination-country", help="country the goods were bound for (ISO 3166-1 alpha-2)"),
        click.option("--transit", multiple=True, help="transit country (repeatable)"),
        click.option("--person", multiple=True, help=f"a person involved: {_PARTY} (repeatable)"),
        click.option("--company", multiple=True, help=f"a company involved: {_PARTY} (repeatable)"),
        click.option("--operation", help="operation code, e.g. DEMETER"),
        click.option("--concealment", help="how the goods were hidden"),
        click.option("--notes", help="free text for the record's readers"),
        click.option("--tlp", default="amber", show_default=True, help=f"who may read it: {_TLP}"),
    )
    for option in reversed(options):
        f = option(f)
    return f


@seizure.command("add")
@_seizure_options
@click.option(
    "--allow-duplicate",
    is_flag=True,
    help="record it even if this node holds a seizure of the same day and place "
    "with one of its containers or its vessel",
)
@client_options
@json_option()
def seizure_add(client: Client, file: str | None, as_json: bool, allow_duplicate: bool, **flags: Any) -> int:
    """Record a seizure."""
    from gcn.v1 import node_pb2 as npb
    from node.cli.client import call
    from node.cli.errors import AlreadyExistsError

    s = (
        forms.from_json_file(file, rec.Seizure)
        if file
        else forms.seizure_from_flags(SimpleNamespace(**flags))
    )
    stub = client.stub()
    request = npb.RecordSeizureRequest(seizure=s, allow_duplicate=allow_duplicate)
    try:
        return _record(as_json, call(stub.RecordSeizure, request))
    except AlreadyExistsError as e:
        raise AlreadyExistsError(f"{e} (add --allow-duplicate to record it anyway)") from e


@seizure.command("import")
@click.argument("file")
@click.option("--batch", type=int, default=500, show_default=True, help="seizures per call (at most 1000)")
@client_options
def seizure_import(client: Client, file: str, batch: int) -> int:
    """Record many seizures from a JSON-lines file (batches, one transaction
    each): one gcn.v1.Seizure as JSON per line ('-' for stdin)."""
    from gcn.v1 import node_pb2 as npb
    from node.cli import render
    from node.cli.client import CliError, call

    seizures = forms.seizures_from_jsonl(file)
    stub = client.stub()
    stored = 0
    for start in range(0, len(seizures), batch):
        chunk = seizures[start : start + batch]
        try:
            call(stub.RecordSeizures, npb.RecordSeizuresRequest(seizures=chunk), timeout=120)
        except CliError as e:
            raise type(e)(
                f"{e} (lines of seizures {start + 1}-{start + len(chunk)}; {stored} stored before)"
            ) from e
        stored += len(chunk)
    render.console.print(f"imported {stored} seizures from {file}")
    return 0


# -- gcn alert -------------------------------------------------------------------------------


@click.group()
def alert() -> None:
    pass


def _alert_options(f: Any) -> Any:
    options = [
        click.option("--file", help="a gcn.v1.Alert as JSON ('-' for stdin); flags are then ignored"),
        click.option("--title", help="what the alert is about, in one line"),
    ]
    for flag in ("vessel", "container", "company", "person", "permit-series", "route", "flight"):
        options.append(click.option(f"--{flag}", multiple=True, help=f"subject: {flag} (repeatable)"))
    options += [
        click.option("--indicator", multiple=True, help="risk indicator (repeatable)"),
        click.option("--commodity", help=forms.choices(rec.Commodity, "COMMODITY_")),
        click.option("--priority", default="medium", show_default=True, help="low|medium|high|urgent"),
        click.option("--valid-until", help="last day in force, YYYY-MM-DD"),
        click.option("--action", help="recommended action"),
        click.option("--operation", help="operation code, e.g. DEMETER"),
        click.option("--notes", help="free text for the alert's readers"),
        click.option("--tlp", default="amber", show_default=True, help=f"who may read it: {_TLP}"),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@alert.command("add")
@_alert_options
@client_options
@json_option()
def alert_add(client: Client, file: str | None, as_json: bool, **flags: Any) -> int:
    """Record an alert."""
    from gcn.v1 import node_pb2 as npb
    from node.cli.client import call

    a = forms.from_json_file(file, rec.Alert) if file else forms.alert_from_flags(SimpleNamespace(**flags))
    stub = client.stub()
    return _record(as_json, call(stub.RecordAlert, npb.RecordAlertRequest(alert=a)))


# -- gcn records, retract, correct -----------------------------------------------------------


@click.group()
def records() -> None:
    pass


@records.command("list")
@click.option("--kind", help="only records of this kind: " + forms.choices(epb.RecordKind, "RECORD_KIND_"))
@click.option("--origin", metavar="NODE_ID", help="only records made by this node id, e.g. KE")
@click.option("--country", metavar="CC", help="only seizures in this country (ISO 3166-1 alpha-2)")
@click.option("--operation", metavar="CODE", help="only records of this operation code, e.g. DEMETER")
@click.option(
    "--commodity", help="only records of this commodity: " + forms.choices(rec.Commodity, "COMMODITY_")
)
@click.option("--container", metavar="NUMBER", help="only records naming this ISO 6346 container number")
@click.option("--imo", help="only records naming this vessel IMO number")
@click.option("--hs", metavar="PREFIX", help="only seizures with an HS code starting so, e.g. 0507")
@click.option("--date-from", metavar="DATE", help="only records from this date on, YYYY-MM-DD")
@click.option("--date-to", metavar="DATE", help="only records up to this date, YYYY-MM-DD")
@click.option("--page", metavar="TOKEN", help="the page token a previous list printed (`more: --page …`)")
@click.option("--all", "include_all", is_flag=True, help="include retracted and corrected records")
@click.option("--limit", type=int, default=50, show_default=True, help="records per page")
@client_options
@json_option()
def records_list(
    client: Client,
    kind: str | None,
    origin: str | None,
    country: str | None,
    operation: str | None,
    commodity: str | None,
    container: str | None,
    imo: str | None,
    hs: str | None,
    date_from: str | None,
    date_to: str | None,
    page: str | None,
    include_all: bool,
    limit: int,
    as_json: bool,
) -> int:
    """List records, newest first."""
    from gcn.v1 import node_pb2 as npb
    from node.cli import render
    from node.cli.client import call

    req = npb.ListRecordsRequest(
        origin=origin or "",
        country=country or "",
        operation_code=operation or "",
        container_number=container or "",
        vessel_imo=imo or "",
        hs_code_prefix=hs or "",
        date_from=date_from or "",
        date_to=date_to or "",
        include_inactive=include_all,
        page_size=limit,
        page_token=page or "",
    )
    if kind:
        req.kind = forms.enum_value(epb.RecordKind, "RECORD_KIND_", kind, "--kind")  # type: ignore[assignment]
    if commodity:
        req.commodity = forms.enum_value(rec.Commodity, "COMMODITY_", commodity, "--commodity")  # type: ignore[assignment]
    resp = call(client.stub().ListRecords, req)
    if as_json:
        render.print_json(resp)
        return 0
    render.records_table(list(resp.records), title=plural(len(resp.records), "record"))
    if resp.next_page_token:
        render.console.print(f"more: --page {resp.next_page_token}")
    return 0


@records.command("show")
@click.argument("record_id")
@click.option(
    "--origin",
    metavar="NODE_ID",
    help="the node that recorded it (needed when records of several origins share the id)",
)
@client_options
@json_option()
def records_show(client: Client, record_id: str, origin: str | None, as_json: bool) -> int:
    """Show one record."""
    from gcn.v1 import node_pb2 as npb
    from node.cli import render
    from node.cli.client import call

    r = call(client.stub().GetRecord, npb.GetRecordRequest(record_id=record_id, origin=origin or ""))
    if as_json:
        render.print_json(r)
    else:
        render.record_detail(r)
    return 0


@click.command()
@click.argument("record_id")
@click.option("--reason", required=True, help="why, for every reader of the record (e.g. 'vessel cleared')")
@client_options
@json_option()
def retract(client: Client, record_id: str, reason: str, as_json: bool) -> int:
    """Retract one of this node's records."""
    from gcn.v1 import node_pb2 as npb
    from node.cli.client import call

    reply = call(client.stub().Retract, npb.RetractRequest(record_id=record_id, reason=reason))
    return _record(as_json, reply)


@click.command()
@click.argument("record_id")
@click.option("--reason", required=True, help="what was wrong, for every reader of the record")
@click.option(
    "--kind",
    type=click.Choice(("seizure", "alert")),
    default="seizure",
    show_default=True,
    help="the record's kind",
)
@click.option("--file", required=True, help="the full corrected record as JSON ('-' for stdin)")
@client_options
@json_option()
def correct(client: Client, record_id: str, reason: str, kind: str, file: str, as_json: bool) -> int:
    """Replace one of this node's records by a corrected version."""
    from gcn.v1 import node_pb2 as npb
    from node.cli.client import call

    req = npb.CorrectRequest(record_id=record_id, reason=reason)
    if kind == "seizure":
        req.seizure.CopyFrom(forms.from_json_file(file, rec.Seizure))
    else:
        req.alert.CopyFrom(forms.from_json_file(file, rec.Alert))
    return _record(as_json, call(client.stub().Correct, req))
