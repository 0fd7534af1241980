"""SyncService: thin servicer over the sync source and the receiver. The caller
is the node named in its TLS client certificate (checked by the TLS handshake
against the federation CA), and must be active in the directory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from federation import vectors
from federation.outbox import SyncSource
from federation.receive import Receiver
from gcn.v1 import directory_pb2 as dir_pb
from gcn.v1 import search_pb2, sync_pb2, sync_pb2_grpc
from node.clock import Clock
from node.errors import FailedPreconditionError, NotFoundError, PermissionDeniedError, UnauthenticatedError
from node.federation_state import FederationState
from node.logging import get_logger

log = get_logger(__name__)


def caller_id(context: Any) -> str:
    """The node id in the peer's verified client certificate (its CN)."""
    auth = context.auth_context() or {}
    names = auth.get("x509_common_name") or []
    if not names:
        raise UnauthenticatedError("no client certificate: node-to-node calls need mutual TLS")
    return bytes(names[0]).decode()


class SyncServicer(sync_pb2_grpc.SyncServiceServicer):
    def __init__(self, state: FederationState, source: SyncSource, receiver: Receiver, clock: Clock) -> None:
        self.state = state
        self.source = source
        self.receiver = receiver
        self.clock = clock
        # A peer that calls us is alive: replication brings its round with it forward.
        self.on_call: Callable[[str], None] = lambda caller: None
        # A member node's search at this hub (`node.searching.HubSearchAnswer.answer`).
        self.hub_search: (
            Callable[[str, search_pb2.HubSearchRequest, float | None], search_pb2.HubSearchResponse] | None
        ) = None

    def _relaying(self) -> None:
        """Stale trust fails closed: nothing is served to relay on an old view."""
        verdict = self.state.freshness(self.clock())
        if verdict.stale:
            raise FailedPreconditionError(f"this node is not relaying: {verdict.stale}")

    def _caller(self, context: Any) -> str:
        caller = caller_id(context)
        if not self.state.is_active(caller):
            raise PermissionDeniedError(f"node {caller} is not an active member of this federation")
        try:
            self.on_call(caller)
        except Exception:  # never fail the peer's call for our bookkeeping
            log.exception("call-in listener failed", caller=caller)
        return caller

    def GetDirectory(self, request: sync_pb2.GetDirectoryRequest, context: Any) -> dir_pb.SignedDirectory:
        caller_id(context)  # any federation certificate may fetch the directory (a new node has none yet)
        signed = self.state.signed_directory()
        if signed is None:
            raise NotFoundError("this node holds no directory")
        if request.have_version and request.have_version >= self.state.version():
            # Nothing newer: an empty answer, with the newest timestamp held.
            stamp = self.state.timestamp()
            return dir_pb.SignedDirectory(timestamp=stamp) if stamp is not None else dir_pb.SignedDirectory()
        return signed

    def GetVector(self, request: sync_pb2.GetVectorRequest, context: Any) -> sync_pb2.VersionVector:
        caller = self._caller(context)
        self._relaying()
        heads = self.source.vector(caller, request.origin)
        return vectors.to_proto((h.origin, h.audience, h.seq, h.hash) for h in heads)

    def Pull(self, request: sync_pb2.PullRequest, context: Any) -> sync_pb2.PullResponse:
        caller = self._caller(context)
        self._relaying()
        batch = self.source.batch_for(
            caller,
            vectors.from_proto(request.have),
            max_envelopes=request.max_envelopes,
            max_bytes=request.max_bytes,
            origin=request.origin,
            exclude={(h.origin, h.audience) for h in request.exclude},
        )
        return sync_pb2.PullResponse(envelopes=batch.envelopes, more=batch.more, receipts=batch.receipts)

    def Push(self, request: sync_pb2.PushRequest, context: Any) -> sync_pb2.PushResponse:
        caller = self._caller(context)
        self._relaying()  # nothing is taken on an old view, whatever date an envelope claims
        result = self.receiver.apply(list(request.envelopes), caller, self.clock(), list(request.receipts))
        heads = vectors.to_proto((o, a, q, h) for (o, a), (q, h) in sorted(result.heads.items()))
        return sync_pb2.PushResponse(
            stored=result.stored,
            duplicates=result.duplicates,
            heads=heads,
            refused=[r.to_proto() for r in result.refused],
        )

    def HubSearch(self, request: search_pb2.HubSearchRequest, context: Any) -> search_pb2.HubSearchResponse:
        caller = self._caller(context)
        if self.hub_search is None:
            raise FailedPreconditionError("this node does not answer searches")
        self._relaying()  # on stale trust a hub answers no search either
        return self.hub_search(caller, request, context.time_remaining())
