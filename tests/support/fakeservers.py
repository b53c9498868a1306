"""Small scripted proxies for what no package provides: exact wire bytes, replies glued to the
target's first bytes, and proxies that misbehave. Each runs in threads on a free loopback port."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable

Handler = Callable[["Session"], None]


class Session:
    """One accepted connection; everything read from it is kept for assertions."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.received = b""

    def recv_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise EOFError(f"client closed after {self.received!r}")
            data += chunk
        self.received += data
        return data

    def recv_until(self, marker: bytes, limit: int = 65536) -> bytes:
        data = b""
        while marker not in data:
            chunk = self.conn.recv(1)
            if not chunk:
                raise EOFError(f"client closed after {self.received + data!r}")
            data += chunk
            if len(data) > limit:
                raise EOFError("request too long")
        self.received += data
        return data

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)

    def echo(self) -> None:
        while True:
            try:
                data = self.conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.received += data
            self.conn.sendall(data)


class FakeServer:
    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(16)
        self.host = host
        self.port: int = self.listener.getsockname()[1]
        self.handler = handler
        self.sessions: list[Session] = []
        self._closing = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            session = Session(conn)
            self.sessions.append(session)
            threading.Thread(target=self._run, args=(session,), daemon=True).start()

    def _run(self, session: Session) -> None:
        try:
            self.handler(session)
        except (OSError, EOFError):
            pass
        finally:
            if not self._closing:
                session.conn.close()

    def settled(self) -> list[Session]:
        """The sessions of every connection made before this call, once the accept thread has
        taken them all in: a probe of our own, accepted after them, shows when it has."""
        with socket.create_connection((self.host, self.port), timeout=10) as probe:
            mark = probe.getsockname()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                for i, session in enumerate(list(self.sessions)):
                    with contextlib.suppress(OSError):
                        if session.conn.getpeername() == mark:
                            return self.sessions[:i]
                time.sleep(0.01)
        raise AssertionError(f"the probe of {self.host}:{self.port} was never accepted")

    def close(self) -> None:
        self._closing = True
        # shutdown() wakes the thread blocked in accept(); close() alone would leave it listening.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for s in self.sessions:
            s.conn.close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


FAKE_TARGET_BANNER = b"SSH-2.0-FakeTarget\r\n"
"""The first bytes of a target behind a scripted proxy: the SOCKS proxies below send them right after
their reply, the tests glue them to an HTTP one."""


def http_proxy(reply: bytes, then_echo: bool = True) -> Handler:
    """Read the CONNECT request, answer reply (which may carry the target's first bytes), echo."""

    def handle(s: Session) -> None:
        s.recv_until(b"\r\n\r\n")
        s.send(reply)
        if then_echo:
            s.echo()

    return handle


def socks5_proxy(method_reply: bytes = b"\x05\x00", reply: bytes = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x16",
                 then: bytes = FAKE_TARGET_BANNER) -> Handler:  # fmt: skip
    """Read greeting and request exactly; answer reply + then in one send, then echo."""

    def handle(s: Session) -> None:
        if method_reply:  # empty: the greeting was already handled
            _, n = s.recv_exactly(2)
            s.recv_exactly(n)
            s.send(method_reply)
            if method_reply[1:2] != b"\x00":
                return
        _, _, _, atyp = s.recv_exactly(4)
        if atyp == 1:
            s.recv_exactly(4 + 2)
        elif atyp == 4:
            s.recv_exactly(16 + 2)
        else:
            (length,) = s.recv_exactly(1)
            s.recv_exactly(length + 2)
        s.send(reply + then)
        s.echo()

    return handle


def socks4_proxy(reply: bytes = b"\x00\x5a\x00\x00\x00\x00\x00\x00", then: bytes = FAKE_TARGET_BANNER) -> Handler:
    def handle(s: Session) -> None:
        head = s.recv_exactly(8)
        s.recv_until(b"\x00")  # userid
        if head[4:7] == b"\x00\x00\x00" and head[7] != 0:
            s.recv_until(b"\x00")  # SOCKS4A host name
        s.send(reply + then)
        s.echo()

    return handle


def silent(s: Session) -> None:
    """Accept, read whatever comes, never answer."""
    while s.conn.recv(65536):
        pass


def half_closes_then_counts(counted: queue.Queue[int]) -> Handler:
    """Says "ready", half-closes, and puts how many bytes came until the client's EOF."""

    def handle(s: Session) -> None:
        s.send(b"ready\n")
        s.conn.shutdown(socket.SHUT_WR)
        n = 0
        while chunk := s.conn.recv(1 << 20):
            n += len(chunk)
        counted.put(n)

    return handle
