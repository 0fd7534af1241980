"""Check (pass 2, code level, on a copy of a hub's database): does the walk's
frontier (`HubSearchResponse.examined_to`) name records the caller may not read?

The copy of RINEX-ESA's store is changed to look like a hub whose policy
shares its newest seizures to region:ESA only (their global views deleted).
A caller that reads only `global` (VN, RINEX-SEA) then asks a walk that stops
early, as the hub's own does at WALK_LIMIT rows or the caller's deadline.

    .venv/bin/python -m tests.redteam_search.check_frontier_leak
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

from gcn.v1 import search_pb2 as spb
from node.domain.search import search_store
from node.domain.search_query import parse_query
from node.storage.db import Database

RT = Path(os.environ.get("RT_DIR", "/tmp/rt"))
src = RT / "run" / "RINEX-ESA" / "gcn.sqlite"
copy = RT / "frontier-leak.sqlite"
shutil.copy(src, copy)
db = sqlite3.connect(copy)
# the newest 6,000 rows in search order: their global views go (region:ESA only)
top = "select envelope_id from records order by event_month desc, record_id desc, origin desc limit 6000"
db.execute(
    f"create temp table gone as select envelope_id from records where audience = 'global'"
    f" and envelope_id in ({top})"
)
db.execute("delete from record_terms where envelope_id in (select envelope_id from gone)")
db.execute("delete from records where envelope_id in (select envelope_id from gone)")
db.commit()
database = Database(f"sqlite:///{copy}")
for name, query in {
    "origin ZZ (nothing visible; walk)": spb.SearchQuery(origin="ZZ"),
    "empty query": spb.SearchQuery(),
}.items():
    with database.read() as s:
        page = search_store(s, parse_query(query), limit=100, audiences=["global"], deadline=time.monotonic())
    f = page.frontier
    row = (
        None
        if f is None
        else db.execute(
            "select group_concat(audience) from records where record_id = ? and origin = ?",
            (f.record_id, f.origin),
        ).fetchone()[0]
    )
    print(
        json.dumps(
            {
                "query": name,
                "caller_reads": ["global"],
                "found": len(page.found),
                "more": page.more,
                "examined_to": None if f is None else [str(f.event_month), f.record_id, f.origin],
                "audiences of that record here": row,
            }
        ),
        flush=True,
    )
