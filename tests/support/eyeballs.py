"""Addresses for Happy Eyeballs tests and benchmarks: a port that never answers, a port that does,
and a name with both an IPv6 and an IPv4 loopback address."""

from __future__ import annotations

import contextlib
import select
import socket
import threading

DUALSTACK = "ncfd-dualstack.test"
"""A name .ci/run puts in /etc/hosts for both ::1 and 127.0.0.1."""

LISTENING_BANNER = b"SSH-2.0-Listening\r\n"
"""What a Listening port sends each connection first."""


def dualstack_resolves() -> bool:
    """Whether DUALSTACK resolves to both ::1 and 127.0.0.1, and ::1 is usable here."""
    try:
        found = {a[4][0] for a in socket.getaddrinfo(DUALSTACK, 22, 0, socket.SOCK_STREAM)}
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return {"::1", "127.0.0.1"} <= found


class NoBlackhole(RuntimeError):
    """This kernel completes handshakes even on a full backlog."""


def _listener(host: str, port: int, backlog: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(backlog)
    return listener


def _connecting(host: str, port: int) -> socket.socket:
    """A socket whose connect() to host:port has started, and goes on without us."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.connect_ex((host, port))
    return sock


class Blackhole:
    """A port that drops SYNs: a listen(0) socket whose backlog connections nobody accepts fill.
    release() empties the backlog, so that the next retransmitted SYN gets in."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.listener = _listener(host, port, 0)
        self.port: int = self.listener.getsockname()[1]
        # The first fills the backlog, the next ones find it full; the last one checks that it is.
        self.fillers = [_connecting(host, self.port) for _ in range(4)]
        if select.select([], self.fillers[-1:], [], 0.3)[1]:
            self.close()
            raise NoBlackhole("this kernel answers SYNs on a full backlog: no way to make an unanswering port")

    def release(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.listener.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.listener.accept()[0].close()

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.listener.close()

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Listening:
    """A port on host that accepts and sends LISTENING_BANNER to each connection; port=0 picks one."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.listener = _listener(host, port, 16)
        self.port: int = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                self.accepted.append(conn)
                conn.sendall(LISTENING_BANNER)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.listener.close()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()

    def __enter__(self) -> Listening:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
