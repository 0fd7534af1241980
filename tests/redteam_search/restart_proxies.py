"""Set up: restart the rt_proxy processes of the running federation (by their pids in state.json)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

RT = Path(os.environ.get("RT_DIR", "/tmp/rt"))
state = json.loads((RT / "run" / "state.json").read_text())
for pid in state.get("proxy_pids", []):
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
time.sleep(0.5)
pids = []
for node, m in state.items():
    if not isinstance(m, dict) or "endpoint" not in m:
        continue
    ctl = RT / "ctl" / f"{node}.json"
    ctl.write_text('{"mode": "pass"}')
    log = (RT / f"proxy-{node}.log").open("w")
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.redteam_search.rt_proxy",
            str(m["endpoint"]),
            str(m["listen"]),
            str(ctl),
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    pids.append(p.pid)
state["proxy_pids"] = pids
(RT / "run" / "state.json").write_text(json.dumps(state, indent=1))
print(pids)
