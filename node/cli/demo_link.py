"""The demo's link between the port and its national node: a loopback TCP
forwarder run as its own process, so it outlives `gcn demo --keep`.

`python -m node.cli.demo_link LISTEN:TARGET ...` forwards each loopback port
LISTEN to TARGET (the directory names LISTEN as the node's federation
endpoint; the node listens on TARGET). SIGUSR1 cuts every link (open
connections reset, new ones refused), SIGUSR2 restores them, SIGTERM stops.
It holds no state and reads nothing of the federation.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from contextlib import suppress
from types import FrameType

_RST = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close with a reset


def _reset(s: socket.socket) -> None:
    with suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
    with suppress(OSError):
        s.close()


class Link:
    """The forwarders, cut or not."""

    def __init__(self, pairs: list[tuple[int, int]]) -> None:
        self._lock = threading.Lock()
        self._cut = False
        self._open: set[socket.socket] = set()
        self._listeners = []
        for listen, target in pairs:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", listen))
            s.listen(64)
            self._listeners.append(s)
            threading.Thread(target=self._accept, args=(s, target), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            for s in list(self._open):
                _reset(s)
            self._open.clear()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def _accept(self, listener: socket.socket, target: int) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._cut:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self._cut:
                    _reset(client)
                    _reset(upstream)
                    continue
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            _reset(src)
            _reset(dst)


def _pairs(args: list[str]) -> list[tuple[int, int]]:
    pairs = []
    for arg in args:
        listen, sep, target = arg.partition(":")
        if not sep or not listen.isdigit() or not target.isdigit():
            raise SystemExit(f"demo_link: {arg!r} is not LISTEN:TARGET (two port numbers)")
        pairs.append((int(listen), int(target)))
    return pairs


def main(argv: list[str]) -> int:
    link = Link(_pairs(argv))
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGUSR1:
            link.cut()
        elif signum == signal.SIGUSR2:
            link.restore()
        else:
            stop.set()

    for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    print("link ready", flush=True)
    while not stop.wait(1.0):
        pass
    link.cut()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
