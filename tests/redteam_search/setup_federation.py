"""Set up (not an attack): a federation of real `gcn serve` processes made with
the real CLI (tests/fault/harness.py), plus a second region (RINEX-SEA, VN) and
bilateral:KE+VN; every endpoint behind an rt_proxy process; marker records.

    .venv/bin/python -m tests.redteam_search.setup_federation   # leaves it running
State: /tmp/rt/run/state.json (ports, tokens, record ids), proxies /tmp/rt/ctl/*.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.domain import samples
from tests.fault import harness

RT = Path(os.environ.get("RT_DIR", "/tmp/rt"))
TEMPLATE, RUN, CTL = RT / "template", RT / "run", RT / "ctl"
POLICY = """version = 1
[[rule]]
name = "amber seizures national"
match = { kind = ["seizure"], tlp = ["amber", "amber-strict"] }
share = [{ audience = "national", view = "full" }]
[[rule]]
name = "green seizures"
match = { kind = ["seizure"], tlp = ["clear", "green"] }
share = [
  { audience = "national", view = "full" },
  { audience = "region", view = "redacted" },
  { audience = "global", view = "statistical" },
]
[[rule]]
name = "amber timber to VN"
match = { kind = ["seizure"], tlp = ["amber"], commodity = ["timber"] }
share = [{ audience = "bilateral:KE+VN", view = "full" }]
[[rule]]
name = "green alerts"
match = { kind = ["alert"], tlp = ["clear", "green"] }
share = [
  { audience = "national", view = "full" },
  { audience = "region", view = "full" },
  { audience = "global", view = "redacted" },
]
"""

harness.TOPOLOGY = (
    *harness.TOPOLOGY,
    ("RINEX-SEA", "regional", "", "SEA", ("WCO-GLOBAL",)),
    ("VN", "national", "VN", "SEA", ("RINEX-SEA",)),
)
harness.NODE_IDS = tuple(t[0] for t in harness.TOPOLOGY)


def template() -> None:
    if (TEMPLATE / "nodes.json").exists():
        return
    shutil.rmtree(TEMPLATE, ignore_errors=True)
    TEMPLATE.mkdir(parents=True)
    harness.make_template(TEMPLATE)
    root = str(TEMPLATE / "root")
    harness._run([harness.GCN, "root", "bilateral", "KE", "VN", "--dir", root])
    harness._run([harness.GCN, "root", "publish", "--dir", root, "--out", f"{root}/directory.pb"])
    for n in harness.NODE_IDS:
        cfg = str(TEMPLATE / n / "gcn.toml")
        harness._run([harness.GCN, "directory", "import", f"{root}/directory.pb", "--config", cfg])


def seizure(
    desc: str,
    tlp: rec.TLP.ValueType,
    commodity: rec.Commodity.ValueType | None = None,
    day: str = "2026-11-20",
) -> rec.Seizure:
    from datetime import date

    s = samples.ivory_seizure(date.fromisoformat(day))
    s.tlp = tlp
    s.goods[0].description = desc
    if commodity is not None:
        for g in s.goods:
            g.commodity = commodity
    return s


def main() -> None:
    template()
    shutil.rmtree(RUN, ignore_errors=True)
    fed = harness.federation_from(TEMPLATE, RUN)
    for p in fed.proxies.values():
        p.close()
    CTL.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {}
    procs = []
    for n in fed.nodes.values():
        (CTL / f"{n.node_id}.json").write_text('{"mode": "pass"}')
        log = (RT / f"proxy-{n.node_id}.log").open("w")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.redteam_search.rt_proxy",
                    str(n.endpoint_port),
                    str(n.listen_port),
                    str(CTL / f"{n.node_id}.json"),
                ],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
        state[n.node_id] = {
            "officer": n.officer_port,
            "listen": n.listen_port,
            "endpoint": n.endpoint_port,
            "token": n.token,
        }
    (RUN / "policy.toml").write_text(POLICY)
    for nid in ("KE", "TZ", "VN"):
        fed[nid].env["GCN_SHARING_POLICY_FILE"] = str(RUN / "policy.toml")
    fed.start_all()
    for n in fed.nodes.values():
        state[n.node_id]["pid"] = n.proc.pid if n.proc else None
    state["proxy_pids"] = [p.pid for p in procs]
    (RUN / "state.json").write_text(json.dumps(state, indent=1))
    print("serving; waiting for keys to spread", flush=True)
    time.sleep(20)
    from tests.redteam_search.rt_client import officer

    ids = {}

    def add(node: str, name: str, s: rec.Seizure) -> str:
        stub, md = officer(node)
        r = stub.RecordSeizure(npb.RecordSeizureRequest(seizure=s), metadata=md, timeout=30)
        ids[name] = r.record_id
        return str(r.record_id)

    add("KE", "ke_red", seizure("zzredsecret pangolin", rec.TLP_RED))
    add("KE", "ke_amber", seizure("zzambersecret pangolin", rec.TLP_AMBER))
    add("KE", "ke_bilateral", seizure("zzbilateralsecret rosewood", rec.TLP_AMBER, rec.COMMODITY_TIMBER))
    add("KE", "ke_green", seizure("zzgreenmark", rec.TLP_GREEN))
    add("KE", "ke_retracted", seizure("zzretractme", rec.TLP_GREEN))
    add("KE", "ke_corrected", seizure("zzcorrectme", rec.TLP_GREEN))
    add("TZ", "tz_amber", seizure("zztzsecret pangolin", rec.TLP_AMBER))
    add("VN", "vn_green", seizure("zzseamark pangolin", rec.TLP_GREEN))
    add("VN", "vn_amber", seizure("zzvnsecret", rec.TLP_AMBER))
    # bulk: 400 green seizures at KE and at TZ (common words for expensive queries)
    for nid, seed in (("KE", 1), ("TZ", 2)):
        path = harness.seizures_jsonl(RT / f"bulk-{nid}.jsonl", 400, seed)
        fed[nid].gcn("seizure", "import", str(path))
    stub, md = officer("KE")
    stub.Retract(npb.RetractRequest(record_id=ids["ke_retracted"], reason="wrong"), metadata=md, timeout=30)
    fixed = seizure("zzcorrected", rec.TLP_GREEN)
    r = stub.Correct(
        npb.CorrectRequest(record_id=ids["ke_corrected"], reason="fix", seizure=fixed),
        metadata=md,
        timeout=30,
    )
    ids["ke_correction"] = r.record_id
    state["ids"] = ids
    (RUN / "state.json").write_text(json.dumps(state, indent=1))
    print(json.dumps(ids, indent=1), flush=True)
    print("READY", flush=True)


if __name__ == "__main__":
    main()
