"""A loopback TCP proxy controlled by a JSON file (attack tool, not a test).

    python -m tests.redteam_search.rt_proxy LISTEN_PORT TARGET_PORT CTL_FILE

CTL_FILE (re-read on every chunk; missing = pass):
  {"mode": "pass"}                      forward both ways
  {"mode": "delay", "seconds": 5}       hold each server->client chunk for `seconds`
  {"mode": "stall"}                     accept, forward nothing either way (black hole)
  {"mode": "drop_after", "bytes": N}    reset a connection after N server->client bytes
  {"mode": "reset"}                     reset every connection, new ones too
  "target": PORT                        (any mode) forward new connections to PORT instead
  "gen": N                              a connection made under another gen is reset at its next chunk
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any


def _reset(s: socket.socket) -> None:
    with suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with suppress(OSError):
        s.close()


class Ctl:
    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text() or "{}"))
        except (OSError, ValueError):
            return {}


def pump(
    src: socket.socket, dst: socket.socket, ctl: Ctl, downstream: bool, gen: int, gens: list[int]
) -> None:
    sent = 0
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            while True:
                c = ctl.get()
                mode = c.get("mode", "pass")
                if mode == "reset" or int(c.get("gen", 0)) != gen:
                    raise OSError("reset")
                if mode != "stall":
                    break
                time.sleep(0.05)
            if downstream and mode == "delay":
                time.sleep(float(c.get("seconds", 5)))
            if downstream and mode == "drop_after":
                limit = int(c.get("bytes", 0))
                if sent + len(data) > limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    raise OSError("drop")
            dst.sendall(data)
            sent += len(data)
    except OSError:
        pass
    finally:
        _reset(src)
        _reset(dst)


def main() -> None:
    listen, target, ctl_path = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    ctl = Ctl(ctl_path)
    gens = [0]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen))
    ls.listen(128)
    print(f"proxy {listen} -> {target}", flush=True)
    while True:
        client, _ = ls.accept()
        c = ctl.get()
        if c.get("mode") == "reset":
            _reset(client)
            continue
        try:
            up = socket.create_connection(("127.0.0.1", int(c.get("target", target))), timeout=5)
            up.settimeout(None)
        except OSError:
            _reset(client)
            continue
        g = int(c.get("gen", 0))
        threading.Thread(target=pump, args=(client, up, ctl, False, g, gens), daemon=True).start()
        threading.Thread(target=pump, args=(up, client, ctl, True, g, gens), daemon=True).start()


if __name__ == "__main__":
    main()
