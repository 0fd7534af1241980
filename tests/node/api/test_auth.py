"""Officers' access to their own node, over real gRPC on loopback: bearer tokens,
roles, revocation and rotation, open health, and tokens kept out of the
database and the log."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from sqlalchemy import func, select, text

from gcn.v1 import node_pb2 as npb
from gcn.v1 import node_pb2_grpc
from node.api.grpc_server import RunningServer
from node.api.interceptors import bearer_token
from node.api.permissions import NODE_PERMISSIONS, NODE_SERVICE, authorize, check_covers
from node.api.server import build_server
from node.api.tls import api_ca_pem, server_credentials
from node.app import NodeApp
from node.cli.client import ClientTls, open_channel
from node.domain import samples
from node.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    ValidationError,
)
from node.logging import configure_logging
from node.storage.models import EnvelopeRow, UserRow
from node.storage.users import LAST_USED_RESOLUTION, Role, User, UserStore
from node.testing.clock import ManualClock

UNKNOWN_ID = "3f0c1b9e-0000-4000-8000-000000000000"
Metadata = list[tuple[str, str]]


@pytest.fixture
def address(app: NodeApp) -> Iterator[str]:
    tls = server_credentials(app.config)
    running: RunningServer = build_server(app, "127.0.0.1:0", max_message_bytes=4 << 20, workers=4, tls=tls)
    yield f"127.0.0.1:{running.port}"
    running.stop(None)


@pytest.fixture
def channel(address: str, app: NodeApp) -> Iterator[grpc.Channel]:
    with open_channel(address, ClientTls(api_ca_pem(app.config))) as ch:
        yield ch


def _bearer(token: str) -> Metadata:
    return [("authorization", f"Bearer {token}")]


def _stored(app: NodeApp) -> int:
    with app.db.begin() as s:
        return int(s.scalar(select(func.count()).select_from(EnvelopeRow)) or 0)


def _requests(clock: ManualClock) -> dict[str, Any]:
    """One request per NodeService method (writes valid; retract/correct/get of an unknown id)."""
    today = clock().date()
    return {
        "RecordSeizure": npb.RecordSeizureRequest(seizure=samples.ivory_seizure(today - timedelta(days=1))),
        "RecordSeizures": npb.RecordSeizuresRequest(
            seizures=[samples.hcfc_seizure(today - timedelta(days=1))]
        ),
        "RecordAlert": npb.RecordAlertRequest(alert=samples.vessel_alert(today + timedelta(days=30))),
        "Retract": npb.RetractRequest(record_id=UNKNOWN_ID, reason="entered twice"),
        "Correct": npb.CorrectRequest(
            record_id=UNKNOWN_ID, reason="typo", seizure=samples.ivory_seizure(today - timedelta(days=1))
        ),
        "GetRecord": npb.GetRecordRequest(record_id=UNKNOWN_ID),
        "ListRecords": npb.ListRecordsRequest(),
        "GetNodeInfo": npb.GetNodeInfoRequest(),
    }


def _call(channel: grpc.Channel, method: str, request: Any, metadata: Metadata | None) -> Any:
    return getattr(node_pb2_grpc.NodeServiceStub(channel), method)(request, metadata=metadata, timeout=10)


def _refused(fn: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        fn()
    return err.value


# -- who may call what --------------------------------------------------------------------------

WRITES = ("RecordSeizure", "RecordAlert", "Retract", "Correct")
READS = ("GetRecord", "ListRecords", "GetNodeInfo")
MATRIX = [
    pytest.param(role, method, role != "analyst" or method in READS, id=f"{role}-{method}")
    for role in ("analyst", "officer", "admin")
    for method in (*WRITES, *READS)
]


@pytest.mark.parametrize(("role", "method", "allowed"), MATRIX)
def test_each_role_calls_exactly_the_methods_the_table_gives_it(
    app: NodeApp,
    channel: grpc.Channel,
    users: UserStore,
    clock: ManualClock,
    role: str,
    method: str,
    allowed: bool,
) -> None:
    token = users.add(f"{role}-1", Role(role), clock())
    request = _requests(clock)[method]
    before = _stored(app)
    try:
        _call(channel, method, request, _bearer(token))
        code = grpc.StatusCode.OK
    except grpc.RpcError as e:
        code, details = e.code(), e.details()
    if allowed:
        # Past the door: the call succeeds or fails on its own merits (an unknown record).
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND)
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert details == f"role analyst may not call {method} (needs officer)"
        assert _stored(app) == before


def test_the_permission_table_covers_every_node_service_method_and_nothing_else() -> None:
    check_covers(NODE_PERMISSIONS)
    assert set(NODE_PERMISSIONS) == {m.name for m in NODE_SERVICE.methods}
    missing = {k: v for k, v in NODE_PERMISSIONS.items() if k != "GetNodeInfo"}
    with pytest.raises(ConfigError, match="no role for GetNodeInfo"):
        check_covers(missing)
    with pytest.raises(ConfigError, match="Sync not in the service"):
        check_covers({**NODE_PERMISSIONS, "Sync": Role.ADMIN})


def test_a_method_missing_from_the_table_is_refused_to_everyone(clock: ManualClock) -> None:
    admin = User("root", Role.ADMIN, clock(), clock(), None)
    with pytest.raises(PermissionDeniedError, match="no role may call Sync"):
        authorize(admin, "Sync")


# -- tokens ----------------------------------------------------------------------------------


def _unknown() -> str:
    return "gcn_" + secrets.token_urlsafe(32)


TOKEN_CASES = [
    pytest.param(lambda t: None, "no token", id="no-metadata"),
    pytest.param(lambda t: [("authorization", f"Basic {t}")], "malformed", id="basic-scheme"),
    pytest.param(lambda t: [("authorization", t)], "malformed", id="no-scheme"),
    pytest.param(lambda t: [("authorization", "Bearer")], "malformed", id="bearer-without-token"),
    pytest.param(lambda t: [("authorization", f"Bearer {t} {t}")], "malformed", id="two-words"),
    pytest.param(lambda t: [*_bearer(t), *_bearer(t)], "malformed", id="two-headers"),
    pytest.param(lambda t: [("x-token", t)], "no token", id="wrong-header"),
    pytest.param(lambda t: _bearer(_unknown()), "unknown or revoked token", id="unknown-token"),
    pytest.param(lambda t: _bearer(t[:-1]), "unknown or revoked token", id="truncated-token"),
    pytest.param(lambda t: _bearer(t.upper()), "unknown or revoked token", id="case-changed-token"),
]


@pytest.mark.parametrize(("metadata", "phrase"), TOKEN_CASES)
@pytest.mark.parametrize("method", ["RecordSeizure", "ListRecords"])
def test_a_call_without_a_valid_token_is_unauthenticated_and_changes_nothing(
    app: NodeApp,
    channel: grpc.Channel,
    officer_token: str,
    clock: ManualClock,
    metadata: Callable[[str], Metadata | None],
    phrase: str,
    method: str,
) -> None:
    before = _stored(app)
    err = _refused(lambda: _call(channel, method, _requests(clock)[method], metadata(officer_token)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    details = err.details() or ""
    assert phrase in details
    assert officer_token not in details
    assert _stored(app) == before


def test_the_scheme_is_case_insensitive(channel: grpc.Channel, officer_token: str) -> None:
    info = _call(
        channel, "GetNodeInfo", npb.GetNodeInfoRequest(), [("authorization", f"bearer {officer_token}")]
    )
    assert info.node_id == "KE"


def test_a_removed_users_token_stops_working_at_once(
    channel: grpc.Channel, users: UserStore, officer_token: str, clock: ManualClock
) -> None:
    reply = _call(channel, "RecordSeizure", _requests(clock)["RecordSeizure"], _bearer(officer_token))
    assert reply.record_id
    users.remove("officer")
    err = _refused(lambda: _call(channel, "ListRecords", npb.ListRecordsRequest(), _bearer(officer_token)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.details() == "unknown or revoked token"
    with pytest.raises(NotFoundError):
        users.remove("officer")


def test_a_rotated_token_replaces_the_old_one(
    channel: grpc.Channel, users: UserStore, officer_token: str, clock: ManualClock
) -> None:
    new = users.rotate("officer", clock())
    assert new != officer_token
    err = _refused(lambda: _call(channel, "ListRecords", npb.ListRecordsRequest(), _bearer(officer_token)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    reply = _call(channel, "RecordSeizure", _requests(clock)["RecordSeizure"], _bearer(new))
    assert reply.record_id
    assert users.get("officer").role == Role.OFFICER
    with pytest.raises(NotFoundError):
        users.rotate("nobody", clock())


def test_health_and_reflection_need_no_token(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "gcn.v1.NodeService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert "gcn.v1.NodeService" in ProtoReflectionDescriptorDatabase(channel).get_services()


def test_other_services_and_streaming_methods_do_not_slip_past(users: UserStore, admin_token: str) -> None:
    """A service registered next to NodeService without a rule is refused (default
    deny), and a streaming method is checked like a unary one."""
    from concurrent import futures

    from node.api.interceptors import officer_interceptors

    server = grpc.server(futures.ThreadPoolExecutor(2), interceptors=officer_interceptors(users))
    echo = grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)
    stream = grpc.unary_stream_rpc_method_handler(lambda req, ctx: iter([req, req]))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler("x.Other", {"Echo": echo}),
            grpc.method_handlers_generic_handler("gcn.v1.NodeService", {"Watch": stream}),
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            other = ch.unary_unary("/x.Other/Echo")
            err = _refused(lambda: other(b"hi", metadata=_bearer(admin_token), timeout=5))
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED
            assert err.details() == "/x.Other/Echo is not open to callers of this server"
            watch = ch.unary_stream("/gcn.v1.NodeService/Watch")
            err = _refused(lambda: list(watch(b"hi", timeout=5)))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
            err = _refused(lambda: list(watch(b"hi", metadata=_bearer(admin_token), timeout=5)))
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED
            assert err.details() == "no role may call Watch"
    finally:
        server.stop(None)


# -- the store ---------------------------------------------------------------------------------


def test_tokens_are_random_prefixed_and_stored_only_as_their_sha256(
    app: NodeApp, users: UserStore, clock: ManualClock, tmp_path: Path
) -> None:
    tokens = {name: users.add(name, Role.OFFICER, clock()) for name in ("kamau", "wanjiru", "otieno")}
    assert len(set(tokens.values())) == 3
    for token in tokens.values():
        assert token.startswith("gcn_") and len(token) == 4 + 43
    with app.db.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM users"))]
    assert {r["name"] for r in rows} == set(tokens)
    everything = json.dumps(rows, default=str)
    for name, token in tokens.items():
        assert token not in everything
        assert token.removeprefix("gcn_") not in everything
        row = next(r for r in rows if r["name"] == name)
        assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    if app.db.is_sqlite:  # nor anywhere in the database files
        app.db.dispose()
        raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*.sqlite*"))
        for token in tokens.values():
            assert token.encode() not in raw
        assert hashlib.sha256(tokens["kamau"].encode()).hexdigest().encode() in raw


NAMES = [
    pytest.param("a", False, id="too-short"),
    pytest.param("ab", True, id="two-chars"),
    pytest.param("j.doe_2-x", True, id="punctuation"),
    pytest.param("x" * 64, True, id="64-chars"),
    pytest.param("x" * 65, False, id="65-chars"),
    pytest.param("John", False, id="upper-case"),
    pytest.param("-john", False, id="leading-dash"),
    pytest.param(".john", False, id="leading-dot"),
    pytest.param("jo hn", False, id="space"),
    pytest.param("john\n", False, id="trailing-newline"),
    pytest.param("jöhn", False, id="non-ascii"),
]


@pytest.mark.parametrize(("name", "valid"), NAMES)
def test_user_names(users: UserStore, clock: ManualClock, name: str, valid: bool) -> None:
    if valid:
        users.add(name, Role.ANALYST, clock())
        assert [u.name for u in users.list()] == [name]
    else:
        with pytest.raises(ValidationError, match=r"^name: "):
            users.add(name, Role.ANALYST, clock())
        assert users.list() == []


def test_duplicate_names_and_unknown_roles_are_refused(users: UserStore, clock: ManualClock) -> None:
    users.add("kamau", "officer", clock())
    with pytest.raises(ConflictError, match="user kamau already exists"):
        users.add("kamau", Role.ANALYST, clock())
    with pytest.raises(ValidationError, match=r"^role: must be one of analyst, officer, admin"):
        users.add("wanjiru", "superuser", clock())
    assert [(u.name, u.role) for u in users.list()] == [("kamau", Role.OFFICER)]


def test_last_used_is_written_at_most_once_a_minute(users: UserStore, clock: ManualClock) -> None:
    token = users.add("kamau", Role.OFFICER, clock())
    assert users.get("kamau").last_used_at is None
    first = clock()
    assert users.authenticate(token).name == "kamau"
    assert users.get("kamau").last_used_at == first
    clock.advance(LAST_USED_RESOLUTION.total_seconds() - 1)
    users.authenticate(token)
    assert users.get("kamau").last_used_at == first
    clock.advance(1)
    users.authenticate(token)
    assert users.get("kamau").last_used_at == clock()
    with pytest.raises(UnauthenticatedError, match="unknown or revoked token"):
        users.authenticate(token + "x")


def test_bearer_token_parsing() -> None:
    assert bearer_token([("authorization", "Bearer gcn_abc")]) == "gcn_abc"
    assert bearer_token([("user-agent", "x"), ("authorization", "  BEARER   gcn_abc ")]) == "gcn_abc"
    for bad in ([], None, [("authorization", "gcn_abc")], [("authorization", b"Bearer gcn_abc")]):
        with pytest.raises(UnauthenticatedError):
            bearer_token(bad)


# -- the log -------------------------------------------------------------------------------------


@pytest.fixture
def log_output(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """Everything the node logs during the test, in `request.param` format, at debug level."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging(request.param, "debug", stream=out)
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def _exploding_clock() -> datetime:
    raise RuntimeError("clock broke")


@pytest.mark.parametrize("log_output", ["json", "console"], indirect=True)
def test_tokens_never_reach_the_log(
    app: NodeApp,
    channel: grpc.Channel,
    users: UserStore,
    clock: ManualClock,
    officer_token: str,
    analyst_token: str,
    log_output: io.StringIO,
) -> None:
    requests = _requests(clock)
    _call(channel, "RecordSeizure", requests["RecordSeizure"], _bearer(officer_token))
    _refused(lambda: _call(channel, "RecordSeizure", requests["RecordSeizure"], _bearer(analyst_token)))
    _refused(lambda: _call(channel, "GetRecord", requests["GetRecord"], _bearer(officer_token)))
    _refused(lambda: _call(channel, "ListRecords", requests["ListRecords"], _bearer(officer_token[:-2])))
    _refused(
        lambda: _call(channel, "ListRecords", requests["ListRecords"], [("authorization", officer_token)])
    )
    # An internal error while authenticating logs a traceback (with locals, on
    # the console): the token must not be among them.
    broken = build_server(
        app,
        "127.0.0.1:0",
        max_message_bytes=1 << 20,
        workers=2,
        tls=None,  # plaintext on loopback
        authenticator=UserStore(app.db, _exploding_clock),
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{broken.port}") as other:
            err = _refused(
                lambda: _call(other, "ListRecords", requests["ListRecords"], _bearer(officer_token))
            )
            assert err.code() == grpc.StatusCode.INTERNAL
    finally:
        broken.stop(None)

    logged = log_output.getvalue()
    assert "record stored" in logged and "request refused" in logged and "clock broke" in logged
    for token in (officer_token, analyst_token):
        assert token not in logged
        assert token[4:20] not in logged
    if log_output is not None and logged.lstrip().startswith("{"):
        lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
        stored = next(e for e in lines if e["event"] == "record stored")
        assert (stored["user"], stored["role"]) == ("officer", "officer")
        denied = next(e for e in lines if e.get("code") == "PERMISSION_DENIED")
        assert (denied["user"], denied["role"]) == ("analyst", "analyst")
        assert denied["error"] == "role analyst may not call RecordSeizure (needs officer)"
        assert not any("token" in key for e in lines for key in e)


def test_the_users_table_is_created_by_the_migrations(app: NodeApp) -> None:
    with app.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(UserRow)) == 0


def test_a_token_in_steady_use_still_expires_from_the_cache_after_its_user_is_removed_elsewhere(
    app: NodeApp, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A removal by another process (`gcn users remove` while the node runs) is not
    seen by this process's cache; it must still take effect within the cache time,
    however often the token is used meanwhile."""
    from types import SimpleNamespace

    from sqlalchemy import delete

    from node.storage.users import AUTH_CACHE_SECONDS

    now = [1000.0]
    monkeypatch.setattr("node.storage.users.time", SimpleNamespace(monotonic=lambda: now[0]))
    store = UserStore(app.db, clock)
    token = store.add("busy", "officer", clock())
    store.authenticate(token)  # cached at t=1000
    with app.db.begin() as s:  # another process removes the user: the row goes, our cache stays
        s.execute(delete(UserRow).where(UserRow.name == "busy"))
    for _ in range(20):  # used every 2 s for 40 s
        now[0] += 2
        if now[0] - 1000.0 < AUTH_CACHE_SECONDS:
            assert store.authenticate(token).name == "busy"
        else:
            with pytest.raises(UnauthenticatedError):
                store.authenticate(token)
