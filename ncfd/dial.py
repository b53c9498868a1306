"""Resolve a name and open a TCP connection to it, with nc's socket options applied."""

from __future__ import annotations

import errno
import socket

from ncfd.errors import ConnectFailed, ResolveError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from ncfd.log import Log
    from ncfd.options import Options


def show_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def resolve(host: str, port: int, opts: Options, role: str) -> list[tuple]:  # type: ignore[type-arg]
    flags = socket.AI_NUMERICHOST if opts.numeric else 0
    try:
        return socket.getaddrinfo(host, port, opts.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, flags)
    except socket.gaierror as e:
        raise ResolveError(f'cannot resolve {role} "{host}": {e.strerror}') from None


def _prepare(family: int, opts: Options) -> socket.socket:
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


def connect(host: str, port: int, opts: Options, log: Log, role: str) -> socket.socket:
    """Try each address in turn; the deadline (SIGALRM) bounds the whole attempt."""
    addresses = resolve(host, port, opts, role)
    failures: list[str] = []
    for family, _, _, _, sockaddr in addresses:
        address = sockaddr[0]
        log(f"connecting to {role} {host} ({address}) port {port}")
        sock = _prepare(family, opts)
        try:
            sock.connect(sockaddr)
        except OSError as e:
            sock.close()
            reason = e.strerror or errno.errorcode.get(e.errno or 0, str(e))
            log(f"connect to {role} {host} ({address}) port {port} failed: {reason}")
            failures.append(f"{address}: {reason}")
            continue
        except BaseException:
            sock.close()
            raise
        log(f"connected to {role} {show_host(address)}:{port}")
        return sock
    detail = failures[0].split(": ", 1)[1] if len(failures) == 1 else "; ".join(failures)
    raise ConnectFailed(f"connect to {role} {host} port {port} failed: {detail}")
