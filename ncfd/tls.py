"""HTTPS proxies: TLS to the proxy, and a detached relay for what comes after, with -F.

A TLS session lives in this process's memory, so it cannot be handed to ssh as a descriptor. With
an HTTPS proxy, ncfd -F hands over one end of a socketpair instead, and a forked child relays
between the other end and the TLS connection until either side closes. That child is the price:
a process for the session's lifetime and a copy of every byte, as with any relaying ProxyCommand.
Without -F, ncfd relays stdin/stdout to the TLS session itself (ncfd.relay).
"""

from __future__ import annotations

import os
import socket

from ncfd.errors import DeadProxy, NcfdError, ProxyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

    from ncfd.deadline import Deadline
    from ncfd.log import Log

# OpenSSL's X509_V_ERR_ codes that a CA given with --proxy-cacert can cure: unable to get the issuer
# certificate, self-signed certificate, self-signed one in the chain, unable to get the local issuer.
_UNKNOWN_ISSUER = (2, 18, 19, 20)


def start_tls(
    sock: socket.socket, host: str, peer: str, cafile: str | None, deadline: Deadline, log: Log
) -> ssl.SSLSocket:
    """TLS to host (an HTTPS proxy, a PAC server; peer names it in messages), verified against
    the system CAs (and cafile), SNI from host. The handshake's waits together are bounded by the
    socket timeout, set to what is left."""
    import ssl

    try:
        context = trusting(cafile)
    except (OSError, ssl.SSLError) as e:
        sock.close()
        raise ProxyError(f"cannot load --proxy-cacert {cafile}: {getattr(e, 'strerror', None) or e}") from None
    try:
        deadline.arm(sock)
        tls = context.wrap_socket(sock, server_hostname=host)
    except NcfdError:  # arm(): the deadline has passed, or it was cancelled
        sock.close()
        raise
    except TimeoutError:
        sock.close()
        raise deadline.expired() from None
    # Dead: browsers try the next proxy after a TLS or certificate error of this one.
    except ssl.SSLCertVerificationError as e:
        sock.close()
        hint = ""
        if e.verify_code in _UNKNOWN_ISSUER:
            hint = (f" (signed by none of the system's CAs nor --proxy-cacert {cafile})" if cafile else
                    " (if a CA of your own signed it, give its certificate with --proxy-cacert file)")  # fmt: skip
        raise DeadProxy(f"{peer}: TLS certificate verification failed: {e.verify_message}{hint}") from None
    except (ssl.SSLError, OSError) as e:
        sock.close()
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise DeadProxy(f"{peer}: TLS handshake failed: {reason}") from None
    log(f"{peer}: {tls.version()}, certificate verified")
    return tls


def trusting(cafile: str | None) -> ssl.SSLContext:
    """A verifying client context trusting the system's CAs, and those in cafile besides:
    create_default_context(cafile=) would trust cafile's instead, and fail every proxy or PAC
    server with a public certificate once --proxy-cacert is given."""
    import ssl

    context = ssl.create_default_context()
    if cafile is not None:
        context.load_verify_locations(cafile)
    return context


def detach(tls: ssl.SSLSocket, handoff: socket.socket) -> socket.socket:
    """A plain socket whose bytes a forked child relays to and from tls (ncfd.relay.bridge), for -F:
    the child ends when the proxy ends the session or the socket's holder closes its end. handoff is
    stdout's socket (fdpass.claim_stdout), which the child closes like stdout."""
    from ncfd.relay import bridge

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
