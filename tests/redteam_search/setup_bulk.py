"""Set up (not an attack): N more green seizures at TZ (default 9000), for the
expensive-query measurement (`attack_member cost`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.fault import harness
from tests.redteam_search.rt_client import BASE, meta

n = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
path = harness.seizures_jsonl(BASE.parent / "bulk-TZ-big.jsonl", n, 7)
m = meta()["TZ"]
env = {
    **os.environ,
    "GCN_NODE": f"127.0.0.1:{m['officer']}",
    "GCN_TOKEN": m["token"],
    "GCN_NODE_CA": str(BASE / "TZ" / "api-tls" / "ca.pem"),
}
t0 = time.monotonic()
subprocess.run([harness.GCN, "seizure", "import", str(path), "--batch", "1000"], env=env, check=True)
print(f"imported {n} in {time.monotonic() - t0:.1f}s")
