"""`gcn`: set up and run a node; record, list and show records.

Commands that talk to a node take `--node HOST:PORT` (or GCN_NODE, or the
`[server] listen` of `--config`, default ./gcn.toml), the officer's token
`--token` (or GCN_TOKEN), and check the node's TLS certificate against
`--ca FILE` (or GCN_NODE_CA, or the API CA of the node of `--config`).
`gcn users …` is the node admin's local command: it opens the node's database
from `--config` and issues, lists, rotates and revokes those tokens. Errors
are one line on stderr and a non-zero exit: 2 for bad input (and a missing or
refused token), 1 for everything else.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crypto.errors import CryptoError
from federation.errors import FederationError
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.api.tls import api_ca_pem, is_loopback, listen_host
from node.bootstrap import CONFIG_FILE, init_node
from node.cli import (
    alarm_cmds,
    api_cmds,
    audit_cmds,
    demo_cmds,
    export_cmds,
    federation_cmds,
    forms,
    hub_cmds,
    render,
    root_cmds,
    search_cmds,
    sync_cmds,
    user_cmds,
)
from node.cli.client import ClientTls, CliError, NodeUnreachableError, call, connect
from node.clock import system_clock
from node.config import Config, load_config
from node.errors import NodeError
from node.joining import JOIN_REQUEST_FILE, prepare_join, read_root_keys
from node.logging import configure_logging

Handler = Callable[[argparse.Namespace], int]

# The exit code of each error class, the first class that matches wins (so a
# subclass comes before its base). 0 is success; 1 also means "the command's
# check failed" (`audit verify`, `bundle import`); 130 an interrupt (Ctrl-C).
EXIT_CODES: tuple[tuple[type[Exception], int, str], ...] = (
    (NodeUnreachableError, 1, "the node is unreachable, did not answer in time, or failed inside"),
    (CliError, 2, "bad input, a missing or refused token, or the node refused the request"),
    (NodeError, 2, "the node's files or database refuse the operation"),
    (FederationError, 2, "the federation's rules or files refuse the operation"),
    (CryptoError, 2, "a key, signature or certificate does not check"),
)
ERRORS = tuple(cls for cls, _, _ in EXIT_CODES)


def exit_code(error: Exception) -> int:
    """The exit code of `error`, by its class (never by its text)."""
    return next(code for cls, code, _ in EXIT_CODES if isinstance(error, cls))


def _config_path(a: argparse.Namespace) -> Path:
    return Path(a.config or os.environ.get("GCN_CONFIG") or CONFIG_FILE)


def _node_address(a: argparse.Namespace) -> str:
    if a.node:
        return str(a.node)
    if os.environ.get("GCN_NODE"):
        return os.environ["GCN_NODE"]
    path = _config_path(a)
    if path.exists():
        return load_config(path).server.listen
    return "127.0.0.1:7401"


def _known_node_config(a: argparse.Namespace) -> Config | None:
    """The config of the node the CLI is pointed at: `--config` / GCN_CONFIG
    (which must load), else ./gcn.toml when it loads."""
    if a.config or os.environ.get("GCN_CONFIG"):
        return load_config(_config_path(a))
    path = Path(CONFIG_FILE)
    if not path.exists():
        return None
    try:
        return load_config(path)
    except NodeError:
        return None  # someone else's file here: the CLI then trusts no node CA and says so


def _client_tls(a: argparse.Namespace, address: str) -> ClientTls | None:
    """What the CLI trusts: `--ca` / GCN_NODE_CA, else the API CA of the node
    of `--config` (GCN_CONFIG, ./gcn.toml), else gRPC's default roots; None
    (plaintext) with `--plaintext` or a node configured so, to loopback only."""
    ca_file = a.ca or os.environ.get("GCN_NODE_CA")
    config = None if ca_file else _known_node_config(a)
    if a.plaintext or (config is not None and config.server.tls == "off"):
        if not is_loopback(listen_host(address)):
            raise CliError(f"plaintext is only for a node on loopback, not {address}: drop --plaintext")
        return None
    if ca_file:
        try:
            ca_pem = Path(ca_file).read_bytes()
        except OSError as e:
            raise CliError(f"--ca / GCN_NODE_CA: cannot read {ca_file}: {e.strerror or e}") from e
        if b"-----BEGIN CERTIFICATE-----" not in ca_pem:
            raise CliError(f"--ca / GCN_NODE_CA: {ca_file} holds no PEM certificate")
        return ClientTls(ca_pem, a.tls_name or "")
    return ClientTls(api_ca_pem(config) if config is not None else None, a.tls_name or "")


def _stub(a: argparse.Namespace) -> Any:
    """A NodeService stub for the node of `a`, carrying `--token` (or GCN_TOKEN)."""
    address = _node_address(a)
    return connect(address, a.token or os.environ.get("GCN_TOKEN"), _client_tls(a, address))


# -- handlers --------------------------------------------------------------------------------


def cmd_init(a: argparse.Namespace) -> int:
    # Check the federation flags before creating anything, so a mistake leaves no half-made node.
    root_keys = read_root_keys(Path(a.root_keys)) if a.root_keys else None
    if root_keys is not None and not a.federation_listen:
        raise CliError("--root-keys needs --federation-listen HOST:PORT (this node's mutual-TLS listener)")
    config = init_node(
        Path(a.dir),
        node_id=a.id,
        name=a.name or a.id,
        role=a.role,
        country=a.country or "",
        region=a.region or "",
        listen=a.listen,
        database_url=a.database_url,
        tls_names=[n.strip() for n in a.api_name or [] if n.strip()],
        federation_listen=a.federation_listen or "",
        federation_endpoint=a.federation_endpoint or "",
        upstreams=[u.strip().upper() for u in a.upstream or []],
    )
    root_cmds.say(
        f"node {config.node.id} ({config.node.role}) created in {config.base_dir}; "
        f"start it with: gcn serve --config {config.base_dir / CONFIG_FILE}"
    )
    root_cmds.say(
        f"officers' CLIs trust its API CA {config.api_tls_dir / 'ca.pem'} "
        "(hand it over with `gcn api ca`; set GCN_NODE_CA to it)"
    )
    if root_keys is not None:
        prepare_join(config, root_keys, system_clock())
        root_cmds.say(
            f"root keys pinned; join request written to {config.base_dir / JOIN_REQUEST_FILE}: "
            f"send it to the federation root (gcn root admit {JOIN_REQUEST_FILE})"
        )
    return 0


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return value


def cmd_serve(a: argparse.Namespace) -> int:
    from node.api.server import serve

    config = load_config(_config_path(a))
    configure_logging(config.logging.format, config.logging.level)
    serve(config)
    return 0


def _record(a: argparse.Namespace, reply: npb.RecordReply) -> int:
    if a.json:
        render.print_json(reply)
    else:
        render.recorded(reply)
    return 0


def cmd_seizure_add(a: argparse.Namespace) -> int:
    seizure = forms.from_json_file(a.file, rec.Seizure) if a.file else forms.seizure_from_flags(a)
    stub = _stub(a)
    return _record(a, call(stub.RecordSeizure, npb.RecordSeizureRequest(seizure=seizure)))


def cmd_seizure_import(a: argparse.Namespace) -> int:
    """Send a JSON-lines file in RecordSeizures calls; each call is all-or-nothing."""
    seizures = forms.seizures_from_jsonl(a.file)
    stub = _stub(a)
    stored = 0
    for start in range(0, len(seizures), a.batch):
        chunk = seizures[start : start + a.batch]
        try:
            call(stub.RecordSeizures, npb.RecordSeizuresRequest(seizures=chunk), timeout=120)
        except CliError as e:
            raise type(e)(
                f"{e} (lines of seizures {start + 1}-{start + len(chunk)}; {stored} stored before)"
            ) from e
        stored += len(chunk)
    render.console.print(f"imported {stored} seizures from {a.file}")
    return 0


def cmd_alert_add(a: argparse.Namespace) -> int:
    alert = forms.from_json_file(a.file, rec.Alert) if a.file else forms.alert_from_flags(a)
    stub = _stub(a)
    return _record(a, call(stub.RecordAlert, npb.RecordAlertRequest(alert=alert)))


def cmd_retract(a: argparse.Namespace) -> int:
    stub = _stub(a)
    return _record(a, call(stub.Retract, npb.RetractRequest(record_id=a.record_id, reason=a.reason)))


def cmd_correct(a: argparse.Namespace) -> int:
    req = npb.CorrectRequest(record_id=a.record_id, reason=a.reason)
    if a.kind == "seizure":
        req.seizure.CopyFrom(forms.from_json_file(a.file, rec.Seizure))
    else:
        req.alert.CopyFrom(forms.from_json_file(a.file, rec.Alert))
    return _record(a, call(_stub(a).Correct, req))


def cmd_records_list(a: argparse.Namespace) -> int:
    req = npb.ListRecordsRequest(
        origin=a.origin or "",
        country=a.country or "",
        operation_code=a.operation or "",
        container_number=a.container or "",
        vessel_imo=a.imo or "",
        hs_code_prefix=a.hs or "",
        date_from=a.date_from or "",
        date_to=a.date_to or "",
        include_inactive=a.all,
        page_size=a.limit,
        page_token=a.page or "",
    )
    if a.kind:
        req.kind = forms.enum_value(epb.RecordKind, "RECORD_KIND_", a.kind, "--kind")  # type: ignore[assignment]
    if a.commodity:
        req.commodity = forms.enum_value(rec.Commodity, "COMMODITY_", a.commodity, "--commodity")  # type: ignore[assignment]
    resp = call(_stub(a).ListRecords, req)
    if a.json:
        render.print_json(resp)
        return 0
    render.records_table(list(resp.records), title=f"{len(resp.records)} records")
    if resp.next_page_token:
        render.console.print(f"more: --page {resp.next_page_token}")
    return 0


def cmd_records_show(a: argparse.Namespace) -> int:
    r = call(_stub(a).GetRecord, npb.GetRecordRequest(record_id=a.record_id, origin=a.origin or ""))
    if a.json:
        render.print_json(r)
    else:
        render.record_detail(r)
    return 0


def cmd_node_info(a: argparse.Namespace) -> int:
    info = call(_stub(a).GetNodeInfo, npb.GetNodeInfoRequest())
    render.print_json(info)
    return 0


# -- the parser ------------------------------------------------------------------------------


def _client_args(p: argparse.ArgumentParser, json_flag: bool = True) -> None:
    p.add_argument("--node", help="node address HOST:PORT (default: GCN_NODE, or --config's listen)")
    p.add_argument("--config", help=f"node config file (default: GCN_CONFIG or ./{CONFIG_FILE})")
    p.add_argument(
        "--token",
        help="your bearer token (default: GCN_TOKEN; prefer the variable, a flag shows in `ps`)",
    )
    p.add_argument(
        "--ca",
        help="the node's API CA certificate to trust (default: GCN_NODE_CA, or --config's node's own; "
        "the node's admin prints it with `gcn api ca`)",
    )
    p.add_argument("--tls-name", help="the name the node's certificate must carry, if not the --node host")
    p.add_argument(
        "--plaintext", action="store_true", help="no TLS (only to a loopback node with [server] tls = off)"
    )
    if json_flag:
        p.add_argument("--json", action="store_true", help="print JSON for scripts")


def _seizure_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", help="a gcn.v1.Seizure as JSON ('-' for stdin); flags are then ignored")
    p.add_argument("--date", help="incident date YYYY-MM-DD")
    p.add_argument("--country", help="incident country (ISO 3166-1 alpha-2)")
    p.add_argument("--port", help="UN/LOCODE of the port, e.g. KEMBA")
    p.add_argument("--direction", help="import|export|transit")
    p.add_argument("--detection", help=forms.choices(rec.DetectionMethod, "DETECTION_METHOD_"))
    p.add_argument("--commodity", help=forms.choices(rec.Commodity, "COMMODITY_"))
    p.add_argument("--description", help="what the goods are")
    p.add_argument("--hs", help="HS code, 6 to 10 digits")
    p.add_argument("--species", help="scientific name, e.g. 'Loxodonta africana'")
    p.add_argument("--cites", help="CITES appendix: i|ii|iii")
    p.add_argument("--ods", help="ODS substance, e.g. HCFC-22")
    p.add_argument("--basel", help="Basel waste code, e.g. A1180")
    p.add_argument("--quantity", help="quantity and unit, e.g. '450 kg'")
    p.add_argument("--value", help="declared value and currency, e.g. '1200 USD'")
    p.add_argument("--mode", help=forms.choices(rec.TransportMode, "TRANSPORT_MODE_"))
    p.add_argument("--imo", help="vessel IMO number")
    p.add_argument("--vessel", help="vessel name")
    p.add_argument("--flight", help="flight number, e.g. KQ310")
    p.add_argument("--container", action="append", help="ISO 6346 container number (repeatable)")
    p.add_argument("--origin-country")
    p.add_argument("--destination-country")
    p.add_argument("--transit", action="append", help="transit country (repeatable)")
    p.add_argument("--person", action="append", help="NAME:ROLE[:COUNTRY] (repeatable)")
    p.add_argument("--company", action="append", help="NAME:ROLE[:COUNTRY] (repeatable)")
    p.add_argument("--operation", help="operation code, e.g. DEMETER")
    p.add_argument("--concealment")
    p.add_argument("--notes")
    p.add_argument("--tlp", default="amber", help="clear|green|amber|amber-strict|red (default amber)")


def _alert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", help="a gcn.v1.Alert as JSON ('-' for stdin); flags are then ignored")
    p.add_argument("--title")
    for flag in ("vessel", "container", "company", "person", "permit-series", "route", "flight"):
        p.add_argument(f"--{flag}", action="append", help=f"subject: {flag} (repeatable)")
    p.add_argument("--indicator", action="append", help="risk indicator (repeatable)")
    p.add_argument("--commodity", help=forms.choices(rec.Commodity, "COMMODITY_"))
    p.add_argument("--priority", default="medium", help="low|medium|high|urgent")
    p.add_argument("--valid-until", help="YYYY-MM-DD")
    p.add_argument("--action", help="recommended action")
    p.add_argument("--operation")
    p.add_argument("--notes")
    p.add_argument("--tlp", default="amber")


def _record_commands(sub: Any) -> None:
    records = sub.add_parser("records", help="read records").add_subparsers(dest="action", required=True)
    p = records.add_parser("list", help="list records, newest first")
    for flag in (
        "kind",
        "origin",
        "country",
        "operation",
        "commodity",
        "container",
        "imo",
        "hs",
        "date-from",
        "date-to",
        "page",
    ):
        p.add_argument(f"--{flag}")
    p.add_argument("--all", action="store_true", help="include retracted and corrected records")
    p.add_argument("--limit", type=int, default=50)
    _client_args(p)
    p.set_defaults(handler=cmd_records_list)
    p = records.add_parser("show", help="show one record")
    p.add_argument("record_id")
    p.add_argument(
        "--origin", help="the node that recorded it (needed when records of several origins share the id)"
    )
    _client_args(p)
    p.set_defaults(handler=cmd_records_show)

    p = sub.add_parser("retract", help="retract one of this node's records")
    p.add_argument("record_id")
    p.add_argument("--reason", required=True)
    _client_args(p)
    p.set_defaults(handler=cmd_retract)

    p = sub.add_parser("correct", help="replace one of this node's records by a corrected version")
    p.add_argument("record_id")
    p.add_argument("--reason", required=True)
    p.add_argument("--kind", choices=("seizure", "alert"), default="seizure")
    p.add_argument("--file", required=True, help="the full corrected record as JSON")
    _client_args(p)
    p.set_defaults(handler=cmd_correct)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gcn", description="Green Customs intelligence network node")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create a node: config, keys, database, audience keys")
    p.add_argument("--dir", default=".", help="the node's directory (default: here)")
    p.add_argument("--id", required=True, help="node id, e.g. KE or KE-MBA")
    p.add_argument("--name", help="human name of the administration or port")
    p.add_argument("--role", default="national", choices=("national", "port", "regional", "global"))
    p.add_argument("--country", help="ISO 3166-1 alpha-2 (national and port nodes)")
    p.add_argument("--region", help="RINEX region, e.g. ESA")
    p.add_argument("--listen", default="127.0.0.1:7401", help="the officer API's HOST:PORT")
    p.add_argument(
        "--api-name",
        action="append",
        help="a DNS name or IP address officers reach the node by, put in its API certificate "
        "(repeatable; localhost, 127.0.0.1, ::1 and the --listen host are always there)",
    )
    p.add_argument("--database-url", default="sqlite:///gcn.sqlite")
    p.add_argument("--root-keys", help="the federation's root-keys.json: pin it and write join-request.json")
    p.add_argument("--federation-listen", type=_host_port, help="HOST:PORT of the mutual-TLS listener")
    p.add_argument(
        "--federation-endpoint", type=_host_port, help="HOST:PORT peers use to reach it (default: listen)"
    )
    p.add_argument("--upstream", action="append", help="node id this node replicates with (repeatable)")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("serve", help="run the node until SIGTERM/SIGINT")
    p.add_argument("--config", help=f"config file (default: GCN_CONFIG or ./{CONFIG_FILE})")
    p.set_defaults(handler=cmd_serve)

    seizure = sub.add_parser("seizure", help="seizure records").add_subparsers(dest="action", required=True)
    p = seizure.add_parser("add", help="record a seizure")
    _seizure_args(p)
    _client_args(p)
    p.set_defaults(handler=cmd_seizure_add)
    p = seizure.add_parser(
        "import", help="record many seizures from a JSON-lines file (batches, one transaction each)"
    )
    p.add_argument("file", help="one gcn.v1.Seizure as JSON per line ('-' for stdin)")
    p.add_argument("--batch", type=int, default=500, help="seizures per call (at most 1000)")
    _client_args(p, json_flag=False)
    p.set_defaults(handler=cmd_seizure_import)

    alert = sub.add_parser("alert", help="alerts").add_subparsers(dest="action", required=True)
    p = alert.add_parser("add", help="record an alert")
    _alert_args(p)
    _client_args(p)
    p.set_defaults(handler=cmd_alert_add)

    _record_commands(sub)
    user_cmds.add_commands(sub)
    search_cmds.register(sub, _client_args, _stub)
    node = sub.add_parser("node", help="node information").add_subparsers(dest="action", required=True)
    p = node.add_parser("info", help="the node's id, role and public keys")
    _client_args(p, json_flag=False)
    p.set_defaults(handler=cmd_node_info)
    for group in (
        root_cmds,
        federation_cmds,
        sync_cmds,
        alarm_cmds,
        audit_cmds,
        api_cmds,
        hub_cmds,
        demo_cmds,
    ):
        group.register(sub)
    export_cmds.register(sub, _client_args, _stub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    if handler is not cmd_serve:
        configure_logging("auto", "warning")
    try:
        return handler(args)
    except ERRORS as e:
        print(f"gcn: {e}", file=sys.stderr)
        return exit_code(e)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (e.g. `head`) went away; stop quietly like other Unix tools.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
