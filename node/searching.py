"""An officer's search: this node's own store and, in parallel, its hubs, under
one deadline; every hub result verified here; one result per record.

Sources. "local" is this node's index (`node.domain.search`). Each hub above
this node (`HubLink`, given by replication) is asked `HubSearch` over mutual
TLS and answers with signed envelopes only: this node checks each one's
signature against the directory, opens it with its own audience key and
checks that it answers the query (`Query.matches`) and sorts after the page's
position. A hub can leave results out, never add, alter or reorder one
unseen: what fails is counted in its status (`rejected`) and logged.

Deadline. Every hub call carries the time left; the node stops waiting at the
deadline whatever a hub does (a black-holed connection included) and answers
with what came back, naming each source `ok`, `timeout`, `unavailable` or
`refused`.

Merging. All sources sort in one order (`Position`). The page is the first
`page_size` records of the union; a record several sources hold is shown once,
in the fullest view this node could read (its own copy when views tie, which
carries its retraction status), with every source named. The next page token
is the last record's position, the same for every source.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from sqlalchemy import select

from crypto import envelope as env_crypto
from crypto.errors import CryptoError
from federation.errors import PeerError, PeerUnreachableError
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from gcn.v1 import search_pb2 as spb
from node.domain import index
from node.domain.page_token import DONE, PageToken, parse_page_token
from node.domain.reading import RecordReader
from node.domain.search import Found, Position, parse_position, search_store
from node.domain.search_query import Query, parse_query
from node.errors import ConfigError, ValidationError
from node.logging import get_logger
from node.storage import audit
from node.storage.audience_keys import AudienceKeys
from node.storage.models import RecordRow

log = get_logger(__name__)
_RESULT_KINDS = (epb.RECORD_KIND_SEIZURE, epb.RECORD_KIND_ALERT, epb.RECORD_KIND_CORRECTION)
_VIEWS = frozenset((epb.VIEW_FULL, epb.VIEW_REDACTED, epb.VIEW_STATISTICAL))
LOCAL = "local"
DEFAULT_PAGE, MAX_PAGE = 20, 100
DEFAULT_DEADLINE_MS, MIN_DEADLINE_MS, MAX_DEADLINE_MS = 3000, 100, 30000
_State = npb.SourceStatus


class HubLink(Protocol):
    """A hub this node may search: `search` starts the call and returns a
    future whose `result(timeout)` gives the `HubSearchResponse` or raises a
    `PeerError` (`PeerUnreachableError` for a link down or timed out)."""

    @property
    def node_id(self) -> str: ...

    def search(self, request: spb.HubSearchRequest, timeout: float) -> Any: ...


class Verifier(Protocol):
    def keyring(self) -> Any: ...

    def may_write(self, origin: str, audience: str) -> bool: ...

    def is_active(self, node_id: str) -> bool: ...


@dataclass
class _Candidate:
    position: Position
    record: npb.StoredRecord
    sources: list[str]
    other_views: set[int] = field(default_factory=set)
    verified: bool = True


@dataclass
class _SourceResult:
    status: npb.SourceStatus
    candidates: list[_Candidate]
    more: bool
    frontier: Position | None = None  # with `more`: everything at or above it was examined


class FederatedSearch:
    def __init__(
        self,
        reader: RecordReader,
        keys: AudienceKeys,
        trust: Callable[[], Verifier],
        hubs: Callable[[], Sequence[HubLink]] = lambda: (),
    ) -> None:
        self.reader = reader
        self.keys = keys
        self.trust = trust
        self.hubs = hubs
        # After each officer's search: (seconds, whether hubs were asked) — the metrics histogram.
        self.on_searched: list[Callable[[float, bool], None]] = []

    def search_for(self, officer: audit.Officer, req: npb.SearchRequest) -> npb.SearchResponse:
        """`search`, written to the audit trail (the query as asked, the number of
        results on the page) before it is answered."""
        trail = self.reader.audit
        if trail is None:
            raise ConfigError("the audit log is not wired to the search")
        started = time.monotonic()
        out = self.search(req)
        took = time.monotonic() - started
        asked: dict[str, object] = {"query": MessageToDict(req.query, preserving_proto_field_name=True)}
        if req.page_token:
            asked["page_token"] = req.page_token
        if req.local_only:
            asked["local_only"] = True
        trail.record(officer, audit.SEARCH, asked, len(out.hits))
        for listener in self.on_searched:
            listener(took, any(st.source != "local" for st in out.sources))
        return out

    def search(self, req: npb.SearchRequest) -> npb.SearchResponse:
        started = time.monotonic()
        q = parse_query(req.query)
        if req.page_size < 0 or req.page_size > MAX_PAGE:
            raise ValidationError("page_size", f"must be between 1 and {MAX_PAGE} (0 means {DEFAULT_PAGE})")
        size = req.page_size or DEFAULT_PAGE
        deadline_ms = req.deadline_ms or DEFAULT_DEADLINE_MS
        if not MIN_DEADLINE_MS <= deadline_ms <= MAX_DEADLINE_MS:
            rule = f"must be between {MIN_DEADLINE_MS} and {MAX_DEADLINE_MS} (0 means {DEFAULT_DEADLINE_MS})"
            raise ValidationError("deadline_ms", rule)
        token = parse_page_token(req.page_token)
        deadline = started + deadline_ms / 1000
        hubs = [] if req.local_only else [h for h in self.hubs() if not token.done(h.node_id)]
        pending = []
        for hub in hubs:
            start = token.start(hub.node_id)
            ask = spb.HubSearchRequest(query=req.query, page_size=size, after=start.token() if start else "")
            pending.append((hub, _start(hub, ask, deadline_ms / 1000)))
        results = []
        if not token.done(LOCAL):
            results.append(self._local(q, size, token.start(LOCAL), deadline))
        for hub, future in pending:
            results.append(
                self._hub_result(hub, future, q, size, token.start(hub.node_id), deadline, started)
            )
        self._local_status(results, q)
        return _merge(results, size, token)

    def _local(self, q: Query, size: int, after: Position | None, deadline: float) -> _SourceResult:
        t0 = time.monotonic()
        suspects: list[int] = []
        with self.reader.db.read() as s:
            page = search_store(s, q, limit=size, after=after, deadline=deadline)
            candidates = [self._local_candidate(s, f, suspects) for f in page.found]
        self.reader.check_suspects(suspects)
        status = npb.SourceStatus(source=LOCAL, state=_State.STATE_OK, count=len(candidates), millis=_ms(t0))
        return _SourceResult(status, candidates, page.more, page.frontier)

    def _local_candidate(self, s: Any, f: Found, suspects: list[int]) -> _Candidate:
        before = len(suspects)
        record = self.reader.stored(s, f.row, suspects)
        opened = len(suspects) == before  # a stored envelope that does not open is not shown as verified
        return _Candidate(f.position, record, [LOCAL], set(f.other_views), verified=opened)

    def _hub_result(
        self,
        hub: HubLink,
        future: Any,
        q: Query,
        size: int,
        after: Position | None,
        deadline: float,
        started: float,
    ) -> _SourceResult:
        status = npb.SourceStatus(source=hub.node_id)
        try:
            reply: spb.HubSearchResponse = future.result(max(0.0, deadline - time.monotonic()))
        except (FutureTimeout, TimeoutError):
            status.state, status.detail = _State.STATE_TIMEOUT, "no answer within the deadline"
            _cancel(future)
            return _SourceResult(_timed(status, started, future), [], False)
        except PeerUnreachableError as e:
            timed_out = e.code == "DEADLINE_EXCEEDED" or time.monotonic() >= deadline
            status.state = _State.STATE_TIMEOUT if timed_out else _State.STATE_UNAVAILABLE
            status.detail = "no answer within the deadline" if timed_out else str(e)[:200]
            return _SourceResult(_timed(status, started, future), [], False)
        except PeerError as e:
            failed = e.code in ("INTERNAL", "UNKNOWN", "UNIMPLEMENTED", "RESOURCE_EXHAUSTED", "CANCELLED")
            status.state = _State.STATE_UNAVAILABLE if failed else _State.STATE_REFUSED
            status.detail = str(e)[:200]
            return _SourceResult(_timed(status, started, future), [], False)
        candidates: list[_Candidate] = []
        rejected: list[str] = []
        for hit in reply.hits[:size]:
            got = self._check_hit(hit, q, after)
            if isinstance(got, str):
                rejected.append(got)
            else:
                got.sources = [hub.node_id]
                candidates.append(got)
        if len(reply.hits) > size:  # never more than asked for: the rest is not even looked at
            extra = len(reply.hits) - size
            rejected += [f"{extra} result(s) beyond the {size} asked for"] * extra
        if rejected:
            log.warning(
                "hub search results rejected", hub=hub.node_id, rejected=len(rejected), first=rejected[0]
            )
            status.rejected = len(rejected)
            status.detail = f"{len(rejected)} result(s) rejected: {rejected[0]}"[:300]
        status.state, status.count = _State.STATE_OK, len(candidates)
        frontier = _hub_frontier(reply, candidates, after) if reply.more else None
        return _SourceResult(
            _timed(status, started, future), candidates, reply.more and frontier is not None, frontier
        )

    def _check_hit(self, hit: spb.HubSearchHit, q: Query, after: Position | None) -> _Candidate | str:
        """The hit as a record, or why it is rejected."""
        trust = self.trust()
        try:
            v = env_crypto.verify(hit.envelope, trust.keyring())
        except CryptoError as e:
            return f"does not verify: {e}"[:200]
        h = v.header
        if not trust.may_write(h.origin, h.audience):
            return f"{h.origin} may not write into {h.audience}"
        key = self.keys.get(h.audience, h.epoch)
        if key is None:
            return f"no key here for {h.audience} epoch {h.epoch}"
        try:
            body = rec.RecordBody.FromString(env_crypto.open_body(hit.envelope, h, key))
            opened = index.Opened.of(0, h, body, env_crypto.header_created_at(h))
        except (CryptoError, DecodeError, ValueError) as e:
            return f"does not open: {e}"[:200]
        if index.unindexable(opened) is not None:
            return "its body breaks the record rules"
        header = opened.header
        event_date = index.event_date(body, opened.created_at)
        if header.kind not in _RESULT_KINDS:
            return "is not a seizure, alert or correction"
        if not q.matches(index.terms_of(body), header.origin, index.tlp_of(body), event_date):
            return "does not answer the query"
        position = Position.at(event_date, header.record_id, header.origin)
        if after is not None and not position < after:
            return "is not after the page's position"
        record = npb.StoredRecord(
            record_id=header.record_id,
            kind=header.kind,
            origin=header.origin,
            audience=header.audience,
            view=header.view,
            status=npb.RECORD_STATUS_ACTIVE,
            envelope=hit.envelope,
            origin_revoked=not trust.is_active(header.origin),
        )
        record.created_at.CopyFrom(header.created_at)
        which = body.WhichOneof("body")
        if which:
            getattr(record, which).CopyFrom(getattr(body, which))
        if any(self._retracts(p, header) for p in hit.superseded_by[:4]):
            record.status = npb.RECORD_STATUS_RETRACTED
            if q.hide_retracted:
                return "was retracted by its origin"
        views = {int(v) for v in hit.other_views if v in _VIEWS and v != header.view}
        return _Candidate(position, record, [], views)

    def _retracts(self, proof: epb.Envelope, target: epb.EnvelopeHeader) -> bool:
        """Is `proof` the origin's signed retraction of `target`'s record, readable here?"""
        trust = self.trust()
        try:
            v = env_crypto.verify(proof, trust.keyring())
            key = self.keys.get(v.header.audience, v.header.epoch)
            if key is None or v.header.origin != target.origin:
                return False
            body = rec.RecordBody.FromString(env_crypto.open_body(proof, v.header, key))
        except (CryptoError, DecodeError):
            return False
        return (
            body.WhichOneof("body") == "retraction" and body.retraction.target_record_id == target.record_id
        )

    def _local_status(self, results: Sequence[_SourceResult], q: Query) -> None:
        """What this node knows itself about hub results: a retraction or a
        correction of the record held here marks it (a hub can omit one, and
        a hostile hub replay the superseded version); a corrected record is
        not shown (its correction is, where found)."""
        hub_hits = [c for r in results if r.status.source != LOCAL for c in r.candidates]
        if not hub_hits:
            return
        ids = sorted({c.position.record_id for c in hub_hits})
        superseded: dict[tuple[str, str], int] = {}  # RecordStatus values
        with self.reader.db.read() as s:
            for start in range(0, len(ids), 500):
                rows = s.execute(
                    select(RecordRow.origin, RecordRow.target_record_id, RecordRow.kind).where(
                        RecordRow.target_record_id.in_(ids[start : start + 500])
                    )
                )
                for origin, target, kind in rows:
                    by = int(
                        npb.RECORD_STATUS_RETRACTED
                        if kind == epb.RECORD_KIND_RETRACTION
                        else npb.RECORD_STATUS_CORRECTED
                    )
                    if target and superseded.get((origin, target)) != npb.RECORD_STATUS_CORRECTED:
                        superseded[(origin, target)] = by
        for r in results:
            if r.status.source == LOCAL:
                continue
            kept = []
            for c in r.candidates:
                known = superseded.get((c.position.origin, c.position.record_id))
                if known is not None:
                    c.record.status = npb.RecordStatus.ValueType(known)
                if known == npb.RECORD_STATUS_CORRECTED or (
                    known == npb.RECORD_STATUS_RETRACTED and q.hide_retracted
                ):
                    continue
                kept.append(c)
            r.candidates[:] = kept


def _hub_frontier(
    reply: spb.HubSearchResponse, candidates: Sequence[_Candidate], after: Position | None
) -> Position | None:
    """How far a hub that says `more` examined: its `examined_to`, which must
    lie after the page's start and not above its last result; failing that, its
    last result; None when it gave neither (then its `more` is not believed)."""
    last = min((c.position for c in candidates), default=None)
    try:
        claimed = parse_position(reply.examined_to, "examined_to")
    except ValidationError:
        claimed = None
    if claimed is not None and (after is None or claimed < after) and (last is None or claimed <= last):
        return claimed
    return last


def _merge(results: Sequence[_SourceResult], size: int, token: PageToken) -> npb.SearchResponse:
    merged: dict[tuple[str, str], _Candidate] = {}
    for result in results:
        for c in result.candidates:
            key = (c.position.origin, c.position.record_id)
            held = merged.get(key)
            if held is None:
                merged[key] = c
                continue
            views = held.other_views | c.other_views | {held.record.view, c.record.view}
            if c.record.view < held.record.view:  # a fuller view than the one held
                c.sources = held.sources + c.sources
                merged[key] = held = c
            else:
                held.sources += c.sources
            held.other_views = views - {held.record.view}
    ordered = sorted(merged.values(), key=lambda c: c.position, reverse=True)
    page = ordered[:size]
    out = npb.SearchResponse(sources=[r.status for r in results])
    for c in page:
        out.hits.append(
            npb.SearchHit(
                record=c.record,
                other_views=_views(c.other_views),
                sources=list(dict.fromkeys(c.sources)),
                verified=c.verified,
            )
        )
    out.next_page_token = _next_token(results, page[-1].position if len(ordered) >= size else None, token)
    return out


def _next_token(results: Sequence[_SourceResult], last: Position | None, token: PageToken) -> str:
    """Where each source goes on from (`node.domain.page_token`). `last`: the
    last record of a full page (None: the page was not full). A source goes on
    from below `last`, or from its own frontier when it examined less than
    the page covered, and never from above where it started; a source that
    has given everything is done. '' when every source is done."""
    nexts: dict[str, Position | str] = {}
    for r in results:
        source, start = r.status.source, token.start(r.status.source)
        frontier = r.frontier if r.more else None
        if last is not None and not r.more and all(c.position >= last for c in r.candidates):
            nexts[source] = DONE  # all it found is on this page or before
        elif last is not None:
            at = last if frontier is None else max(frontier, last)
            nexts[source] = at if start is None or at < start else start
        else:
            nexts[source] = frontier if frontier is not None else DONE
    nexts.update({s: DONE for s, p in token.sources.items() if p == DONE and s not in nexts})
    if all(n == DONE for n in nexts.values()):
        return ""
    return PageToken(last, {s: n for s, n in nexts.items() if n != last}).encode()


class _Failed:
    """A hub call that failed before it started (no channel): raises at `result`."""

    def __init__(self, error: PeerError) -> None:
        self.error = error

    def result(self, timeout: float | None = None) -> Any:
        raise self.error


def _start(hub: HubLink, ask: spb.HubSearchRequest, timeout: float) -> Any:
    try:
        future = hub.search(ask, timeout)
    except PeerError as e:
        return _Failed(e)
    done = getattr(future, "add_done_callback", None)
    if callable(done):  # when the answer came, not when this node got round to it
        done(lambda _f: setattr(future, "done_at", time.monotonic()))
    return future


def _views(views: Iterable[int]) -> list[epb.View.ValueType]:
    return [epb.View.ValueType(v) for v in sorted(set(views))]


def _ms(t0: float) -> int:
    return int((time.monotonic() - t0) * 1000)


def _timed(status: npb.SourceStatus, started: float, future: Any = None) -> npb.SourceStatus:
    done_at = getattr(future, "done_at", None)
    status.millis = int(((done_at if done_at is not None else time.monotonic()) - started) * 1000)
    return status


def _cancel(future: Any) -> None:
    cancel = getattr(future, "cancel", None)
    if callable(cancel):
        cancel()
