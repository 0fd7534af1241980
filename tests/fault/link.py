"""A loopback TCP proxy the test controls: a node's federation endpoint, so a
story can cut a link (connections reset, new ones refused) and restore it."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

# -- ------------------------------------------------------------------


class LinkProxy:
    """A loopback TCP forwarder `listen_port` → `target_port`. `cut()` resets
    every open connection and every new one until `restore()`. With `backups`,
    a new connection goes to the first target that accepts it (what a TCP load
    balancer in front of a hub's replicas does)."""

    def __init__(self, listen_port: int, target_port: int, backups: tuple[int, ...] = ()) -> None:
        self.target_port = target_port
        self.backups = list(backups)
        self._lock = threading.Lock()
        self._cut = False
        self._open: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", listen_port))
        self._listener.listen(64)
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True, name=f"proxy-{listen_port}")
        self._acceptor.start()

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            for s in list(self._open):
                _reset(s)
            self._open.clear()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        with suppress(OSError):
            # shutdown wakes the thread blocked in accept(); close alone would
            # leave the port bound until that call returned
            self._listener.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):
            self._listener.close()
        self._acceptor.join(timeout=10)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
            if cut:
                _reset(client)
                continue
            upstream = self._connect()
            if upstream is None:
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

    def _connect(self) -> socket.socket | None:
        for port in (self.target_port, *self.backups):
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                continue
            upstream.settimeout(None)
            return upstream
        return None

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            _reset(src)
            _reset(dst)


def _reset(s: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees the link break at once."""
    with suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with suppress(OSError):
        s.close()
