"""Thin gRPC servicers: proto in, domain call, proto out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gcn.v1 import node_pb2 as npb
from gcn.v1 import node_pb2_grpc
from node.api.interceptors import current_caller
from node.domain.reading import RecordReader
from node.domain.records import Recorded, RecordService
from node.errors import FailedPreconditionError, ValidationError
from node.searching import FederatedSearch


def _reply(r: Recorded) -> npb.RecordReply:
    out = npb.RecordReply(
        record_id=r.record_id, kind=r.kind, envelopes=r.envelopes, co2e_tonnes=r.co2e_tonnes
    )
    out.created_at.FromDatetime(r.created_at)
    return out


class NodeServicer(node_pb2_grpc.NodeServiceServicer):
    """The officer API: writes go to `RecordService`, reads to `RecordReader`
    (audited, as the authenticated caller)."""

    def __init__(
        self,
        records: RecordService,
        reader: RecordReader,
        node_info: Callable[[], npb.NodeInfo],
        search: FederatedSearch | None = None,
    ) -> None:
        self.records = records
        self.reader = reader
        self.node_info = node_info
        self.search = search

    def RecordSeizure(self, request: npb.RecordSeizureRequest, context: Any) -> npb.RecordReply:
        return _reply(
            self.records.record_seizure(request.seizure, refuse_duplicate=not request.allow_duplicate)
        )

    def RecordSeizures(self, request: npb.RecordSeizuresRequest, context: Any) -> npb.RecordSeizuresReply:
        return npb.RecordSeizuresReply(
            records=[_reply(r) for r in self.records.record_seizures(request.seizures)]
        )

    def RecordAlert(self, request: npb.RecordAlertRequest, context: Any) -> npb.RecordReply:
        return _reply(self.records.record_alert(request.alert))

    def Retract(self, request: npb.RetractRequest, context: Any) -> npb.RecordReply:
        return _reply(self.records.retract(request.record_id, request.reason))

    def Correct(self, request: npb.CorrectRequest, context: Any) -> npb.RecordReply:
        which = request.WhichOneof("replacement")
        if which is None:
            raise ValidationError("replacement", "a correction needs the full new seizure or alert")
        return _reply(self.records.correct(request.record_id, request.reason, getattr(request, which)))

    def GetRecord(self, request: npb.GetRecordRequest, context: Any) -> npb.StoredRecord:
        return self.reader.get_for(current_caller(), request.record_id, request.origin)

    def ListRecords(self, request: npb.ListRecordsRequest, context: Any) -> npb.ListRecordsResponse:
        return self.reader.list_for(current_caller(), request)

    def Search(self, request: npb.SearchRequest, context: Any) -> npb.SearchResponse:
        if self.search is None:
            raise FailedPreconditionError("this node does not answer searches")
        return self.search.search_for(current_caller(), request)

    def GetNodeInfo(self, request: npb.GetNodeInfoRequest, context: Any) -> npb.NodeInfo:
        return self.node_info()
