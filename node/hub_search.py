"""A hub's side of `SyncService.HubSearch`: a member node's search here.

Answered only by hubs (regional and global roles: the nodes searches are
sent to), only from records this hub can read whose audience the calling node
is a member of (its certificate's node id, judged against the directory), as
signed envelopes. What it costs is bounded per call (the store's walk limits,
the caller's deadline, at most ten seconds) and per caller (at most
`PER_CALLER` searches at once, as many waiting their turn for up to
`MAX_WAIT` seconds, more refused with RESOURCE_EXHAUSTED, so one member cannot
crowd out the sync calls the same listener serves, and the officers of one
node take turns). A record
the origin retracted comes with the retraction, signed, when the caller may
read it. Every call is audited on this hub under the caller's node id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from federation.routing import Topology
from gcn.v1 import node_pb2 as npb
from gcn.v1 import search_pb2 as spb
from node.domain import limits
from node.domain.search import Found, held_audiences, parse_position, search_store
from node.domain.search_query import parse_query
from node.errors import PermissionDeniedError, ResourceExhaustedError, ValidationError
from node.logging import get_logger
from node.storage import audit
from node.storage.envelope_log import as_envelope
from node.storage.models import EnvelopeRow, RecordRow

log = get_logger(__name__)
MAX_PAGE = 100
HUB_ROLES = ("regional", "global")
PER_CALLER = 2
MAX_WAIT = 2.0  # seconds a search waits for its caller's turn
MAX_SECONDS = 10.0


@dataclass(frozen=True)
class NodeCaller:
    """A member node asking this hub (the audit trail's officer for a hub search)."""

    name: str
    role: str = "node"


class HubSearchAnswer:
    def __init__(
        self,
        db: Any,
        topology: Callable[[], Topology | None],
        trail: audit.AuditLog | None,
        role: str = "global",
    ) -> None:
        self.db = db
        self.topology = topology
        self.trail = trail
        self.role = role
        self._running: dict[str, int] = {}
        self._waiting: dict[str, int] = {}
        self._turns = threading.Condition()

    def answer(
        self, caller: str, req: spb.HubSearchRequest, time_left: float | None = None
    ) -> spb.HubSearchResponse:
        if self.role not in HUB_ROLES:
            raise PermissionDeniedError(
                "only hubs answer searches (this node is not a regional or global hub)"
            )
        q = parse_query(req.query)
        if not 1 <= req.page_size <= MAX_PAGE:
            raise ValidationError("page_size", f"must be between 1 and {MAX_PAGE}")
        after = parse_position(req.after, "after")
        seconds = MAX_SECONDS if time_left is None else max(0.0, min(time_left, MAX_SECONDS))
        started = time.monotonic()
        with self._slot(caller, wait=seconds / 2):
            out, allowed = self._search(caller, q, req.page_size, after, started + seconds)
        if self.trail is not None:
            asked = {"query": q.asked, "from_node": caller}
            self.trail.record(NodeCaller(caller), audit.SEARCH, asked, len(out.hits))
        log.info("hub search answered", caller=caller, results=len(out.hits), audiences=allowed)
        return out

    def _search(
        self, caller: str, q: Any, size: int, after: Any, deadline: float
    ) -> tuple[spb.HubSearchResponse, int]:
        topo = self.topology()
        out = spb.HubSearchResponse()
        with self.db.read() as s:
            allowed = [a for a in held_audiences(s) if topo is not None and topo.is_member(caller, a)]
            page = search_store(s, q, limit=size, after=after, audiences=allowed, deadline=deadline)
            out.more = page.more
            if page.frontier is not None:
                out.examined_to = page.frontier.token()
            last: Found | None = None
            for f in page.found:
                hit = self._hit(s, f, allowed)
                if hit is None:
                    continue
                if last is not None and out.ByteSize() + hit.ByteSize() + 8 > limits.MAX_PAGE_BYTES:
                    out.more = True  # the rest after the last hit sent
                    out.examined_to = last.position.token()
                    break
                out.hits.append(hit)
                last = f
        return out, len(allowed)

    def _hit(self, s: Any, f: Found, allowed: Sequence[str]) -> spb.HubSearchHit | None:
        env_row = s.get(EnvelopeRow, f.row.envelope_id)
        if env_row is None:
            return None
        hit = spb.HubSearchHit(envelope=as_envelope(env_row), other_views=sorted(f.other_views))  # type: ignore[arg-type]
        if f.row.status == npb.RECORD_STATUS_RETRACTED and f.row.superseded_by:
            proof = s.scalars(
                select(RecordRow.envelope_id)
                .where(
                    RecordRow.origin == f.row.origin,
                    RecordRow.record_id == f.row.superseded_by,
                    RecordRow.audience.in_(allowed),
                )
                .limit(1)
            ).first()
            proof_row = s.get(EnvelopeRow, proof) if proof is not None else None
            if proof_row is not None:
                hit.superseded_by.append(as_envelope(proof_row))
        return hit

    def _slot(self, caller: str, wait: float = 0.0) -> _Slot:
        return _Slot(self, caller, wait)


class _Slot:
    """One of a caller's `PER_CALLER` concurrent searches. A call finding them
    all taken waits its turn (at most `PER_CALLER` waiting, at most
    `MAX_WAIT` seconds): the officers of one node take turns rather than being
    refused; beyond that it is refused (RESOURCE_EXHAUSTED)."""

    def __init__(self, owner: HubSearchAnswer, caller: str, wait: float = 0.0) -> None:
        self.owner, self.caller, self.wait = owner, caller, wait

    def __enter__(self) -> None:
        o = self.owner
        until = time.monotonic() + min(self.wait, MAX_WAIT)
        with o._turns:
            running, waiting = o._running.get(self.caller, 0), o._waiting.get(self.caller, 0)
            if running >= PER_CALLER and (waiting >= PER_CALLER or self.wait <= 0):
                raise ResourceExhaustedError(
                    f"node {self.caller} already has {running} searches running here; try again"
                )
            o._waiting[self.caller] = waiting + 1
            try:
                while o._running.get(self.caller, 0) >= PER_CALLER:
                    left = until - time.monotonic()
                    if left <= 0 or not o._turns.wait(left):
                        raise ResourceExhaustedError(
                            f"node {self.caller} already has {PER_CALLER} searches running here; try again"
                        )
            finally:
                o._waiting[self.caller] -= 1
                if not o._waiting[self.caller]:
                    del o._waiting[self.caller]
            o._running[self.caller] = o._running.get(self.caller, 0) + 1

    def __exit__(self, *exc: object) -> None:
        o = self.owner
        with o._turns:
            left = o._running.get(self.caller, 1) - 1
            if left:
                o._running[self.caller] = left
            else:
                o._running.pop(self.caller, None)
            o._turns.notify_all()
