"""`gcn export csv` and `gcn export stix`: the records this node holds, as files
other tools read (docs/exports.md has the columns and the STIX mapping).

They read over the officer API like `gcn records list`: `NodeService.Search`
with `local_only` (this node's store, never its hubs), every page, so an
export holds only what this node may read, each record in the fullest view it
holds, and each page is an audited read. Filters map to SearchQuery fields.
The export goes to stdout, or to `--output FILE` (written whole or not at
all, readable by its owner only: it holds TLP-marked intelligence).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import click

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import search_pb2 as spb
from node.cli.errors import CliError
from node.cli.options import Client, client_options
from node.storage.files import PRIVATE, write_file

PAGE_SIZE = 100  # the most a Search page holds
_KINDS = {"seizure": epb.RECORD_KIND_SEIZURE, "alert": epb.RECORD_KIND_ALERT}


def query_of(
    kind: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    origin: str | None = None,
    country: str | None = None,
    operation: str | None = None,
    hide_retracted: bool = False,
) -> spb.SearchQuery:
    """The SearchQuery of the filter flags (the node checks each field)."""
    q = spb.SearchQuery(
        date_from=date_from or "",
        date_to=date_to or "",
        origin=(origin or "").strip().upper(),
        country=(country or "").strip().upper(),
        operation_code=operation or "",
        hide_retracted=hide_retracted,
    )
    if kind:
        q.kind = _KINDS[kind]
    return q


def fetch(stub: Any, query: spb.SearchQuery) -> list[npb.StoredRecord]:
    """Every record of this node's store that matches `query`, page after page."""
    from node.cli.client import call

    records: list[npb.StoredRecord] = []
    token = ""
    while True:
        req = npb.SearchRequest(query=query, page_size=PAGE_SIZE, page_token=token, local_only=True)
        reply = call(stub.Search, req, timeout=60)
        records += [h.record for h in reply.hits]
        token = reply.next_page_token
        if not token:
            return records


def _emit(output: str | None, text: str, what: str) -> None:
    if not output:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(output)
    try:
        write_file(path, text.encode(), mode=PRIVATE, make_parents_mode=None)
    except OSError as e:
        raise CliError(f"--output: cannot write {path}: {e.strerror or e}") from e
    print(f"gcn: wrote {what} to {path}", file=sys.stderr)


def _warn_too_large(records: list[npb.StoredRecord]) -> None:
    skipped = sum(1 for r in records if r.too_large)
    if skipped:
        print(
            f"gcn: {skipped} record(s) left out: too large for a reply, their body is not readable here "
            "(`gcn records show ID` names them)",
            file=sys.stderr,
        )


@click.group()
def export() -> None:
    pass


def _filters(f: Any) -> Any:
    options = (
        click.option("--kind", type=click.Choice(sorted(_KINDS)), help="only seizures or only alerts"),
        click.option(
            "--from",
            "date_from",
            metavar="YYYY-MM-DD",
            help="from this incident date on (alerts: the day recorded)",
        ),
        click.option(
            "--to",
            "date_to",
            metavar="YYYY-MM-DD",
            help="up to this incident date (alerts: the day recorded)",
        ),
        click.option("--origin", metavar="NODE_ID", help="only records of this node id"),
        click.option(
            "--country", metavar="CC", help="a country of the record (ISO 3166-1 alpha-2, any role)"
        ),
        click.option(
            "--operation", metavar="CODE", help="operation code, e.g. DEMETER (also finds DEMETER-IX)"
        ),
        click.option("--hide-retracted", is_flag=True, help="leave retracted records out"),
        click.option("--output", metavar="FILE", help="write to this file (default: stdout)"),
    )
    for option in reversed(options):
        f = option(f)
    return f


@export.command("csv")
@click.option("--goods", is_flag=True, help="one row per goods item instead of per record")
@_filters
@client_options
def export_csv(client: Client, goods: bool, output: str | None, **filters: Any) -> int:
    """One row per record (or per goods item with --goods)."""
    from node.admin import write_csv

    records = fetch(client.stub(), query_of(**filters))
    _warn_too_large(records)
    out = io.StringIO()
    count = write_csv(records, out, goods=goods)
    _emit(output, out.getvalue(), f"{count} row(s) of {len(records)} record(s)")
    return 0


@export.command("stix")
@_filters
@client_options
def export_stix(client: Client, output: str | None, **filters: Any) -> int:
    """A STIX 2.1 bundle: incidents, indicators, TLP 2.0 markings."""
    from node.admin import stix_json
    from node.cli.client import call

    stub = client.stub()
    records = fetch(stub, query_of(**filters))
    _warn_too_large(records)
    info = call(stub.GetNodeInfo, npb.GetNodeInfoRequest())
    names = {info.node_id: info.name} if info.node_id and info.name else {}
    _emit(output, stix_json(records, names), f"a STIX 2.1 bundle of {len(records)} record(s)")
    return 0
