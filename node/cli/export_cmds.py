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

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import search_pb2 as spb
from node.admin import stix_json, write_csv
from node.cli.client import CliError, call
from node.storage.files import PRIVATE, write_file

PAGE_SIZE = 100  # the most a Search page holds
_KINDS = {"seizure": epb.RECORD_KIND_SEIZURE, "alert": epb.RECORD_KIND_ALERT}


def query_of(a: argparse.Namespace) -> spb.SearchQuery:
    """The SearchQuery of the filter flags (the node checks each field)."""
    q = spb.SearchQuery(
        date_from=a.date_from or "",
        date_to=a.date_to or "",
        origin=(a.origin or "").strip().upper(),
        country=(a.country or "").strip().upper(),
        operation_code=a.operation or "",
        hide_retracted=a.hide_retracted,
    )
    if a.kind:
        q.kind = _KINDS[a.kind]
    return q


def fetch(stub: Any, query: spb.SearchQuery) -> list[npb.StoredRecord]:
    """Every record of this node's store that matches `query`, page after page."""
    records: list[npb.StoredRecord] = []
    token = ""
    while True:
        req = npb.SearchRequest(query=query, page_size=PAGE_SIZE, page_token=token, local_only=True)
        reply = call(stub.Search, req, timeout=60)
        records += [h.record for h in reply.hits]
        token = reply.next_page_token
        if not token:
            return records


def _emit(a: argparse.Namespace, text: str, what: str) -> None:
    if not a.output:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(a.output)
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


def cmd_export_csv(a: argparse.Namespace, stub: Any) -> int:
    records = fetch(stub, query_of(a))
    _warn_too_large(records)
    out = io.StringIO()
    count = write_csv(records, out, goods=a.goods)
    _emit(a, out.getvalue(), f"{count} row(s) of {len(records)} record(s)")
    return 0


def cmd_export_stix(a: argparse.Namespace, stub: Any) -> int:
    records = fetch(stub, query_of(a))
    _warn_too_large(records)
    info = call(stub.GetNodeInfo, npb.GetNodeInfoRequest())
    names = {info.node_id: info.name} if info.node_id and info.name else {}
    _emit(a, stix_json(records, names), f"a STIX 2.1 bundle of {len(records)} record(s)")
    return 0


def register(
    sub: Any,
    client_args: Callable[..., None],
    stub_of: Callable[[argparse.Namespace], Any],
) -> None:
    """`gcn export csv|stix`, with the client flags of main.py (`client_args`) and
    its way to a NodeService stub (`stub_of`)."""
    export = sub.add_parser("export", help="records this node holds as CSV or a STIX 2.1 bundle")
    actions = export.add_subparsers(dest="action", required=True)

    def handler(command: Callable[[argparse.Namespace, Any], int]) -> Callable[[argparse.Namespace], int]:
        return lambda a: command(a, stub_of(a))

    csv_p = actions.add_parser("csv", help="one row per record (or per goods item with --goods)")
    csv_p.add_argument("--goods", action="store_true", help="one row per goods item instead of per record")
    csv_p.set_defaults(handler=handler(cmd_export_csv))
    stix_p = actions.add_parser("stix", help="a STIX 2.1 bundle: incidents, indicators, TLP 2.0 markings")
    stix_p.set_defaults(handler=handler(cmd_export_stix))
    for p in (csv_p, stix_p):
        p.add_argument("--kind", choices=sorted(_KINDS), help="only seizures or only alerts")
        p.add_argument(
            "--from",
            dest="date_from",
            metavar="YYYY-MM-DD",
            help="from this incident date on (alerts: the day recorded)",
        )
        p.add_argument(
            "--to",
            dest="date_to",
            metavar="YYYY-MM-DD",
            help="up to this incident date (alerts: the day recorded)",
        )
        p.add_argument("--origin", help="only records of this node id")
        p.add_argument("--country", help="a country of the record (ISO 3166-1 alpha-2, any role)")
        p.add_argument("--operation", help="operation code, e.g. DEMETER (also finds DEMETER-IX)")
        p.add_argument("--hide-retracted", action="store_true", help="leave retracted records out")
        p.add_argument("--output", metavar="FILE", help="write to this file (default: stdout)")
        client_args(p, json_flag=False)
