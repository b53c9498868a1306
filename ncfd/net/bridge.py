"""The bridge for an HTTPS proxy: a TLS session lives in this process's memory, so it cannot be
handed on as a descriptor. The holder (ssh, or a Python caller) gets one end of a socketpair
instead, and the bridge relays between the other end and the TLS session until either side closes,
with ncfd.net.relay's pumps. Two ways to run it: in a forked child, for -F (ncfd exits at once, as
with any other proxy; the child is the price, a process for the session's lifetime and a copy of
every byte, as with any relaying ProxyCommand), or in a daemon thread, for the API (the caller's
process goes on). Without -F, ncfd relays stdin/stdout to the TLS session itself (ncfd.net.relay).
"""

from __future__ import annotations

import os
import select
import socket
import time

from ncfd.net.relay import COPY, Poller, Pump

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

HANGUP_GRACE = 5.0  # seconds to hand on what the holder sent before it closed the bridge's socket


def in_child(tls: ssl.SSLSocket, handoff: socket.socket) -> socket.socket:
    """A plain socket whose bytes a forked child bridges to and from tls, for -F: the child ends
    when the proxy ends the session or the socket's holder closes its end. handoff is stdout's
    socket (fdpass.claim_stdout), which the child closes like stdout."""
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            # The child must not hold stdin/stdout (ssh's socketpair, or a pipeline's ends) open.
            handoff.close()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            bridge(theirs, tls)
        finally:
            os._exit(0)
    theirs.close()
    # Not tls.close(), which would end the session the child goes on with: only our descriptor.
    os.close(tls.detach())
    return ours


def in_thread(tls: ssl.SSLSocket) -> socket.socket:
    """A plain socket whose bytes a daemon thread bridges to and from tls, for the API; the thread
    closes tls and its end when the bridge ends."""
    import threading

    from ncfd.deadline import start_thread
    from ncfd.errors import NcfdError

    ours, theirs = socket.socketpair()
    relay = threading.Thread(target=_bridge_then_close, args=(theirs, tls), name="ncfd HTTPS relay", daemon=True)
    try:
        start_thread(relay.start, "the HTTPS relay")
    except NcfdError:
        for end in (ours, theirs, tls):
            end.close()
        raise
    return ours


def _bridge_then_close(theirs: socket.socket, tls: ssl.SSLSocket) -> None:
    try:
        bridge(theirs, tls)
    finally:
        theirs.close()
        tls.close()


def bridge(plain: socket.socket, tls: ssl.SSLSocket) -> None:
    """Relay between plain, the socket whose other end was handed on, and the TLS session, both
    ways at once. Returns when the proxy ends the session, or when the holder has closed its end
    (after handing on, within HANGUP_GRACE, what it sent before closing); any error ends it too:
    there is nobody to tell. The holder's half-close is not passed on (TLS has none, and the proxy
    would end the session at close_notify)."""
    plain.setblocking(False)
    tls.setblocking(False)
    down = Pump(tls.fileno(), plain.fileno(), COPY, tls)
    up: Pump | None = Pump(plain.fileno(), tls.fileno(), COPY, tls)
    poller = Poller()
    give_up: float | None = None  # set once the holder has hung up
    try:
        while True:
            pumps = [p for p in (down, up) if p is not None]
            # The holder's end is always watched, whatever the pumps wait for: its hang-up ends us.
            watch = () if give_up is not None else (plain.fileno(),)
            ready = poller.wait(pumps, None if give_up is None else give_up - time.monotonic(), watch)
            if give_up is not None and time.monotonic() >= give_up:
                return
            if down.due(ready) and not down.step():
                return
            if up is not None and up.due(ready) and not up.step():
                up = None
            if give_up is None and ready.get(plain.fileno(), 0) & (select.POLLHUP | select.POLLERR):
                give_up = time.monotonic() + HANGUP_GRACE
            if give_up is not None and up is None:
                return
    except OSError:  # ssl.SSLError is one
        return
