"""Check (pass 2): does an honest hub send the origin's retraction with a retracted
record (`HubSearchHit.superseded_by`), and does an officer who does not hold the
record see it marked?  VN (region SEA) asks WCO-GLOBAL for KE's November 2026 records;
then an officer at VN searches the same.

    .venv/bin/python -m tests.redteam_search.check_honest_proof
"""

from __future__ import annotations

import json

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import search_pb2 as spb
from tests.redteam_search.rt_client import member, meta, officer

ids = meta()["ids"]
q = spb.SearchQuery(origin="KE", date_from="2026-11-01", date_to="2026-11-30")
for hub in ("WCO-GLOBAL", "RINEX-ESA"):
    r = member("VN", hub).HubSearch(spb.HubSearchRequest(query=q, page_size=100), timeout=10)
    for h in r.hits:
        hd = epb.EnvelopeHeader.FromString(h.envelope.header)
        if hd.record_id in (ids["ke_retracted"], ids["ke_corrected"], ids["ke_correction"]):
            name = next(k for k, v in ids.items() if v == hd.record_id)
            print(
                json.dumps(
                    {"hub": hub, "record": name, "audience": hd.audience, "proofs": len(h.superseded_by)}
                )
            )
stub, md = officer("VN")
for hide in (False, True):
    q.hide_retracted = hide
    r2 = stub.Search(npb.SearchRequest(query=q, page_size=100), metadata=md, timeout=30)
    for h in r2.hits:
        if h.record.record_id in (ids["ke_retracted"], ids["ke_corrected"], ids["ke_correction"]):
            name = next(k for k, v in ids.items() if v == h.record.record_id)
            print(
                json.dumps(
                    {
                        "officer_at": "VN",
                        "hide_retracted": hide,
                        "record": name,
                        "status": npb.RecordStatus.Name(h.record.status),
                        "sources": list(h.sources),
                    }
                )
            )
