"""Without -F: copy stdin to the socket and the socket to stdout, as nc does for a plain ProxyCommand."""

from __future__ import annotations

import os
import select
import socket
import time

CHUNK = 64 * 1024


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def relay(
    sock: socket.socket,
    *,
    read_stdin: bool,
    half_close: bool,
    quit_after: float | None,
    idle_timeout: float | None,
) -> None:
    """Return when the network side closes (the normal end), stdout goes away, the -q timer runs
    out after stdin's EOF, or nothing moves for idle_timeout seconds."""
    os.set_blocking(1, True)
    net = sock.fileno()
    poller = select.poll()
    poller.register(net, select.POLLIN)
    if read_stdin:
        poller.register(0, select.POLLIN)
    quit_at: float | None = None
    while True:
        waits = [w for w in (idle_timeout, None if quit_at is None else quit_at - time.monotonic()) if w is not None]
        timeout = None if not waits else max(0.0, min(waits)) * 1000
        events = poller.poll(timeout)
        if not events:
            return
        for fd, _ in events:
            if fd == net:
                try:
                    data = sock.recv(CHUNK)
                except ConnectionResetError:
                    data = b""
                if not data:
                    return
                try:
                    _write_all(1, data)
                except BrokenPipeError:
                    return
            else:
                data = os.read(0, CHUNK)
                if data:
                    sock.sendall(data)
                    continue
                poller.unregister(0)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
                if quit_after is not None:
                    quit_at = time.monotonic() + quit_after
