"""HTTPS proxies: TLS to the proxy, and a small detached pump for what comes after.

A TLS session lives in this process's memory, so it cannot be handed to ssh as a descriptor. With
an HTTPS proxy, ncfd hands over one end of a socketpair instead, and a forked child pumps bytes
between the other end and the TLS connection until either side closes. That child is the price:
a process for the session's lifetime and a copy of every byte, as with any relaying ProxyCommand.
"""

from __future__ import annotations

import os
import select
import socket

from ncfd.errors import ProxyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

    from ncfd.log import Log
    from ncfd.proxies import Proxy

CHUNK = 64 * 1024


def start_tls(sock: socket.socket, proxy: Proxy, cafile: str | None, log: Log) -> ssl.SSLSocket:
    """TLS to the proxy, verified against the system CAs (and cafile), SNI from the proxy's name."""
    import ssl

    try:
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as e:
        sock.close()
        raise ProxyError(f"cannot load --proxy-cacert {cafile}: {getattr(e, 'strerror', None) or e}") from None
    try:
        tls = context.wrap_socket(sock, server_hostname=proxy.host)
    except ssl.SSLCertVerificationError as e:
        sock.close()
        raise ProxyError(f"{proxy}: TLS certificate verification failed: {e.verify_message}") from None
    except (ssl.SSLError, OSError) as e:
        sock.close()
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise ProxyError(f"{proxy}: TLS handshake failed: {reason}") from None
    log(f"{proxy}: {tls.version()}, certificate verified")
    return tls


def detach(tls: socket.socket) -> socket.socket:
    """A plain socket whose bytes a forked child pumps to and from tls, for -F or the relay."""
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            # The pump must not hold stdin/stdout (ssh's socketpair, or a pipeline's ends) open.
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            pump(theirs, tls)  # type: ignore[arg-type]
        finally:
            os._exit(0)
    theirs.close()
    # Not tls.close(), which would end the session the child goes on with: only our descriptor.
    os.close(tls.detach())
    return ours


def pump(plain: socket.socket, tls: ssl.SSLSocket) -> None:
    """Copy both ways until the TLS side closes, or the plain side is closed for good."""
    tls.setblocking(True)
    poller = select.poll()
    poller.register(plain, select.POLLIN)
    poller.register(tls, select.POLLIN)
    try:
        while True:
            # Decrypted bytes may wait inside the TLS object (the tunnel's first bytes come with
            # the proxy's reply), where poll() cannot see them.
            events = [(tls.fileno(), select.POLLIN)] if tls.pending() else poller.poll()
            for fd, event in events:
                if fd == tls.fileno():
                    data = tls.recv(CHUNK)
                    if not data:
                        return
                    plain.sendall(data)
                    continue
                if event & select.POLLIN:
                    data = plain.recv(CHUNK)
                    if data:
                        tls.sendall(data)
                        continue
                    # EOF from our side: a half-close (nc -N) or the end. TLS has no half-close,
                    # and telling the proxy would end the session, answer and all: keep the answer
                    # coming, until the plain side hangs up altogether (POLLHUP, reported anyway).
                    poller.modify(plain, 0)
                if event & select.POLLHUP:
                    return
    except OSError:  # ssl.SSLError is one
        return
