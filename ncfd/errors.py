"""The one exception hierarchy. Each class carries the exit code that cli.main maps it to."""

import errno


class NcfdError(Exception):
    """A failure the user can act on: str() is the whole message, without the "ncfd: " prefix."""

    exit_code = 1


class UsageError(NcfdError):
    exit_code = 2


class ResolveError(NcfdError):
    exit_code = 3


class ConnectFailed(NcfdError):
    """The TCP connection to the proxy (or, without a proxy, to the target) failed."""

    exit_code = 4


class Refused(ConnectFailed):
    """Every address refused the connection: nothing listens there (--proxy-pac-optional tells
    this from a host that is there but slow or filtered)."""


class ProxyError(NcfdError):
    """The proxy refused the tunnel, broke the protocol or closed the connection."""

    exit_code = 5


class DeadProxy(ProxyError):
    """The proxy broke off before answering anything: it closed or reset the connection, failed
    TLS, or said nothing to a SOCKS5 greeting. Browsers then try a PAC's next entry, and so does
    ncfd.tunnel.failover; what the proxy does once it has answered is an answer, and ends the run."""


def broken_handshake(proxy_name: str, e: OSError, answered: bool = False) -> ProxyError:
    """The error for a connection that failed under a handshake; dead unless the proxy had answered."""
    kind = ProxyError if answered else DeadProxy
    # A reset reaches us as ECONNRESET or, when we were writing, EPIPE: the same event to a user.
    if e.errno in (errno.ECONNRESET, errno.EPIPE):
        return kind(f"{proxy_name} reset the connection during the handshake")
    return kind(f"{proxy_name} handshake failed: {e.strerror or e}")


class AuthFailed(ProxyError):
    exit_code = 6


class Withheld(AuthFailed):
    """A proxy the user did not name (a PAC's) asked for credentials that ncfd keeps from it
    (ncfd.tunnel.auth_policy). The proxy answered, but another of the PAC's entries may need nothing:
    ncfd.tunnel.failover goes on to the next route and ends with this only when none works."""


class TimedOut(NcfdError):
    exit_code = 7
    # True on the deadline's own end as Deadline.remaining() raises it, before any step has named
    # what was being waited for: the ncfd.deadline.Step around it does. Made anew, it is named.
    unnamed = False


class Cancelled(NcfdError):
    """The caller has gone (connect_async's task was cancelled): what was under way ends with this,
    which nobody reads. Not a TimedOut: it says nothing about the route, and no other is tried."""

    unnamed = False  # as TimedOut's


class PacError(NcfdError):
    """A PAC file could not be had or used: not fetched, not loaded, no usable answer."""

    exit_code = 9


class FdPassError(NcfdError):
    """The descriptor could not be handed over on stdout."""

    exit_code = 8


# The exit code that is not an exception of ours.
EXIT_INTERNAL = 70
