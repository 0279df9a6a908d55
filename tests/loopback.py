"""Network probes for tests: listeners on loopback addresses that the test itself opens.

A test that checks the sandbox's network isolation must never send traffic anywhere but to
these listeners, so that a broken or degraded isolation costs nothing outside the machine:
two TCP listeners (127.0.0.1 and 127.0.0.2; the second also answers as an HTTP server would
be addressed) and a UDP socket on 127.0.0.3 standing in for a DNS resolver. Each records what
reached it; a probe that was refused leaves them empty.
"""
from __future__ import annotations

import socket
import threading

TCP_HOSTS = ("127.0.0.1", "127.0.0.2")
UDP_HOST = "127.0.0.3"


class LoopbackListeners:
    """TCP listeners on 127.0.0.1 and 127.0.0.2 and a UDP 'resolver' on 127.0.0.3."""

    def __init__(self) -> None:
        self.arrived: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.tcp = [socket.create_server((host, 0)) for host in TCP_HOSTS]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((UDP_HOST, 0))
        self._threads = [threading.Thread(target=self._accept, args=(server,), daemon=True)
                         for server in self.tcp]
        self._threads.append(threading.Thread(target=self._receive, daemon=True))
        for thread in self._threads:
            thread.start()

    @property
    def substitutions(self) -> dict[str, str]:
        """Placeholders for a probing submission: {{TCP_PORT_1}}, {{TCP_PORT_2}}, {{UDP_PORT}}."""
        return {"TCP_PORT_1": str(self.tcp[0].getsockname()[1]),
                "TCP_PORT_2": str(self.tcp[1].getsockname()[1]),
                "UDP_PORT": str(self.udp.getsockname()[1])}

    def arrivals(self) -> list[str]:
        """What reached a listener so far ("tcp 127.0.0.1:PORT from ...", "udp ...")."""
        with self._lock:
            return list(self.arrived)

    def _record(self, what: str) -> None:
        with self._lock:
            self.arrived.append(what)

    def _accept(self, server: socket.socket) -> None:
        server.settimeout(0.2)
        host, port = server.getsockname()[:2]
        while not self._stop.is_set():
            try:
                connection, peer = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._record(f"tcp {host}:{port} from {peer[0]}:{peer[1]}")
            connection.close()

    def _receive(self) -> None:
        self.udp.settimeout(0.2)
        host, port = self.udp.getsockname()[:2]
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self._record(f"udp {host}:{port} from {peer[0]}:{peer[1]} ({len(data)} bytes)")

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for server in (*self.tcp, self.udp):
            server.close()
