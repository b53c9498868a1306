"""Resolve a name and open a TCP connection to it, with nc's socket options applied.

Happy Eyeballs v2 (RFC 8305): the addresses are tried in getaddrinfo's order (RFC 6724, IPv6 first
where it is preferred) with the two families interleaved; the next attempt starts when one fails or
when none has answered for ATTEMPT_DELAY; the first to connect wins and every other attempt is
closed. Non-blocking connects and one poll(), whose timeout is also bounded by the deadline; the
sockets are closed on every way out.

getaddrinfo takes no timeout and no signal interrupts it: a name is resolved in a helper thread
abandoned at the deadline (ncfd.deadline.call_within). An address needs no helper: it is parsed at once.
A timeout is the caller's to name (connecting to what, for what): dial names none.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time

from ncfd.errors import ConnectFailed, NcfdError, Refused, ResolveError
from ncfd.render import host_port

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from ncfd.deadline import Deadline
    from ncfd.log import Log
    from ncfd.request import SocketOptions

# RFC 8305 §5: the recommended Connection Attempt Delay.
ATTEMPT_DELAY = 0.25
# connect() on a non-blocking socket: the handshake goes on in the kernel.
_IN_PROGRESS = (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK, errno.EALREADY, errno.EINTR)


def resolve(host: str, port: int, opts: SocketOptions, deadline: Deadline, role: str) -> list[tuple]:  # type: ignore[type-arg]
    def lookup(flags: int) -> list[tuple]:  # type: ignore[type-arg]
        return socket.getaddrinfo(host, port, opts.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, flags)

    try:
        try:
            return lookup(socket.AI_NUMERICHOST)  # an address: no DNS, no helper thread
        except socket.gaierror:
            if opts.numeric:
                raise
        from ncfd.deadline import call_within

        return call_within(deadline, lambda: lookup(0), f"resolving {role} {host}")
    except socket.gaierror as e:
        raise ResolveError(f'cannot resolve {role} "{host}": {e.strerror}{_why(opts, host, deadline)}') from None


def _why(opts: SocketOptions, host: str, deadline: Deadline) -> str:
    """What in the command line made host fail to resolve, when it was that: -n, -4 or -6 (a
    second lookup, of any family, on this failure's path only, tells)."""
    if opts.numeric:
        return " (-n: numeric addresses only, no DNS)"
    if opts.family == socket.AF_UNSPEC:
        return ""
    from ncfd.deadline import call_within

    try:
        call_within(deadline, lambda: socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM), f"resolving {host}")
    except (OSError, NcfdError):
        return ""  # not the family: it does not resolve at all
    option, only = ("-6", "IPv6") if opts.family == socket.AF_INET6 else ("-4", "IPv4")
    return f" ({option}: {only} addresses only, and {host} has none)"


def interleave(addresses: list[tuple]) -> list[tuple]:  # type: ignore[type-arg]
    """RFC 8305 §4: the first address's family first, then alternating families, each family in
    getaddrinfo's order; a sockaddr listed twice is tried once."""
    unique: list[tuple] = []  # type: ignore[type-arg]
    seen = set()
    for info in addresses:
        if info[4] not in seen:
            seen.add(info[4])
            unique.append(info)
    if not unique:
        return unique
    first = [info for info in unique if info[0] == unique[0][0]]
    other = [info for info in unique if info[0] != unique[0][0]]
    ordered = []
    for i in range(max(len(first), len(other))):
        ordered += first[i : i + 1] + other[i : i + 1]
    return ordered


def _prepare(family: int, opts: SocketOptions) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if opts.so_debug:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_DEBUG, 1)
        if opts.rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, opts.rcvbuf)
        if opts.sndbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, opts.sndbuf)
        if opts.tos is not None:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, opts.tos)
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, opts.tos)
        # ssh sets SO_KEEPALIVE itself only on sockets it opens; keep TCPKeepAlive meaningful.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if opts.source_addr is not None or opts.source_port is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            source = opts.source_addr or ("::" if family == socket.AF_INET6 else "0.0.0.0")
            sock.bind((source, opts.source_port or 0))
    except OSError as e:
        sock.close()
        raise ConnectFailed(f"cannot set up the socket: {e.strerror}") from None
    return sock


def _reason(code: int) -> str:
    return os.strerror(code) if code else "Unknown error"


def connect(host: str, port: int, opts: SocketOptions, deadline: Deadline, log: Log, role: str) -> socket.socket:
    """Connect to the first of host's addresses that answers, all within the deadline."""
    return race(interleave(resolve(host, port, opts, deadline, role)), host, port, opts, deadline, log, role)


def race(
    addresses: list[tuple],  # type: ignore[type-arg]
    host: str,
    port: int,
    opts: SocketOptions,
    deadline: Deadline,
    log: Log,
    role: str,
) -> socket.socket:
    """Happy Eyeballs over addresses (getaddrinfo tuples, in the order to try them). Returns the
    winning socket, blocking; raises ConnectFailed naming every address's failure in that order,
    or TimedOut at the deadline (the deadline's own: the caller's ncfd.deadline.Step names what
    was waited for)."""
    attempts: list[socket.socket] = []  # index: position in addresses
    pending: dict[int, int] = {}  # fd -> attempt index, for the attempts still connecting
    failures: dict[int, str] = {}  # attempt index -> "address: reason"
    codes: list[int] = []  # the errno of each failure
    poller = select.poll()
    won = -1
    last_start = 0.0
    hurry = False  # an attempt failed: start the next one without waiting out the delay
    try:
        while won < 0:
            now = time.monotonic()
            if len(attempts) < len(addresses) and (hurry or not pending or now >= last_start + ATTEMPT_DELAY):
                index = len(attempts)
                family, _, _, _, sockaddr = addresses[index]
                if pending and not hurry:
                    waiting = ", ".join(str(addresses[i][4][0]) for i in sorted(pending.values()))
                    log(f"no answer yet from {waiting} after {ATTEMPT_DELAY * 1000:g} ms; trying the next address")
                log(f"connecting to {role} {host} ({sockaddr[0]}) port {port}")
                last_start, hurry = now, False
                attempts.append(_prepare(family, opts))
                deadline.watch(attempts[index])  # a cancel() ends the poll below at once
                attempts[index].setblocking(False)
                code = attempts[index].connect_ex(sockaddr)
                if code == 0:
                    won = index
                elif code in _IN_PROGRESS:
                    pending[attempts[index].fileno()] = index
                    poller.register(attempts[index], select.POLLOUT)
                else:
                    failures[index] = _failed(log, role, host, sockaddr[0], port, code, attempts[index])
                    codes.append(code)
                    hurry = True
                continue
            if not pending:
                break
            wait = deadline.remaining()  # TimedOut at the deadline, out through the finally below
            if len(attempts) < len(addresses):
                wait = min(wait, max(0.0, last_start + ATTEMPT_DELAY - now))
            for index in sorted(pending.pop(fd) for fd, _ in poller.poll(wait * 1000)):
                poller.unregister(attempts[index])
                code = attempts[index].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                # A reset can only come after the handshake (a refused SYN is ECONNREFUSED): the
                # connection was made, and what the peer sent before resetting is still to be read
                # (reading SO_ERROR cleared the error). The reset is the relay's business, not a
                # failed connect: on a busy machine, a server that sends and resets at once beats us
                # to this poll.
                if code in (0, errno.ECONNRESET):
                    won = index  # the earliest attempt among those done in this poll
                    break
                failures[index] = _failed(log, role, host, addresses[index][4][0], port, code, attempts[index])
                codes.append(code)
                hurry = True  # RFC 8305 §5: a failure starts the next attempt at once
    finally:
        for index, sock in enumerate(attempts):
            if index != won:
                if won >= 0 and index not in failures:
                    log(f"abandoned the slower attempt to {addresses[index][4][0]}")
                sock.close()
    if won < 0:
        reasons = [failures[i] for i in sorted(failures)]
        detail = reasons[0].split(": ", 1)[1] if len(reasons) == 1 else "; ".join(reasons)
        kind = Refused if codes and all(code == errno.ECONNREFUSED for code in codes) else ConnectFailed
        raise kind(f"connect to {role} {host} port {port} failed: {detail}")
    sock = attempts[won]
    sock.setblocking(True)  # the descriptor is passed to ssh, which expects a blocking socket
    log(f"connected to {role} {host_port(addresses[won][4][0], port)}")
    return sock


def _failed(log: Log, role: str, host: str, address: str, port: int, code: int, sock: socket.socket) -> str:
    sock.close()
    reason = _reason(code)
    log(f"connect to {role} {host} ({address}) port {port} failed: {reason}")
    return f"{address}: {reason}"
