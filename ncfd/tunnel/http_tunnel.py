"""The CONNECT driver: ask an HTTP proxy for a tunnel, answering its challenges, and hand back the
connection positioned exactly after the proxy's last reply.

Straight I/O around two machines: ConnectExchange (ncfd.tunnel.http_connect) writes each request
and judges each reply; Negotiation (ncfd.tunnel.auth_negotiation) says what comes next. Only the
reply's header block is read (read_header_block): whatever follows belongs to ssh. Every read and
write is given what is left of the deadline.
"""

from __future__ import annotations

import socket

from ncfd.errors import DeadProxy, ProxyError, TimedOut, broken_handshake
from ncfd.log import enabled
from ncfd.tunnel.auth_negotiation import OPEN, SAME_CONNECTION, Negotiation
from ncfd.tunnel.http_connect import ConnectExchange, HeaderBlock, authority, first_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ncfd.deadline import Deadline
    from ncfd.proxies import Proxy
    from ncfd.request import ConnectSpec
    from ncfd.tunnel.auth_negotiation import Login


def open_http_tunnel(
    proxy: Proxy,
    login: Login,
    connection_to_proxy: Callable[[], socket.socket],
    host: str,
    port: int,
    spec: ConnectSpec,
    deadline: Deadline,
    *,
    pac: bool,
) -> socket.socket:
    """A connection through proxy to host:port, as login. connection_to_proxy() opens a connection
    whose far end is the proxy (TLS set up for an HTTPS proxy): the first, and another each time the
    proxy closes one after a challenge. pac: the route is a PAC's entry, where advice to change -X
    does not apply."""
    name, log = str(proxy), spec.log
    target = authority(host, port)
    # A SOCKS server named as a plain HTTP proxy on the command line: -X 5 is the fix.
    socks_fix = "" if pac or proxy.tls else "if it is one, use -X 5 (or a socks5h:// proxy URL)"
    extra = _headers_for(proxy, login, spec)
    # The caller's own Proxy-Authorization: ncfd adds none of its own.
    authorized = any(header.lower() == "proxy-authorization" for header, _ in extra)
    negotiation = Negotiation(proxy, target, login, spec.credentials, authorized, log, deadline)
    sock: socket.socket | None = None
    answered = False  # once the proxy has answered, it is alive: its failures end the run

    def broken(e: OSError) -> ProxyError:
        if proxy.tls and sock is not None:  # TLS 1.3: a refusal of our certificate comes after the handshake
            from ncfd.net.tls import refusal_after

            refused = refusal_after(sock, e, name, spec.client_cert)
            if refused is not None:
                return refused
        return broken_handshake(name, e, answered)

    waiting = f"waiting for {name} to open the tunnel to {target}"
    try:
        with deadline.step(waiting, broken):
            while True:  # until the negotiation opens the tunnel or gives its verdict (MAX_AUTH_ROUNDS at most)
                authorization = negotiation.authorization()
                if sock is None:
                    sock = connection_to_proxy()
                headers = [("Proxy-Authorization", authorization)] if authorization else None
                exchange = ConnectExchange(host, port, name, headers, extra)
                scheme = negotiation.scheme
                what = f" with {scheme} credentials" if scheme else ""
                if extra and enabled(log):
                    from ncfd.proxy_headers import masked

                    what += f" and the headers {masked(extra)}" if scheme else f" with the headers {masked(extra)}"
                log(f"sending CONNECT {target}{what}")
                deadline.arm(sock)
                sock.sendall(exchange.request)
                reply = None
                while reply is None:  # None: a 1xx, and another header block follows
                    reply = exchange.feed(read_header_block(sock, name, deadline, waiting, socks_fix))
                log(f'{name} answered "{reply.line}"')
                answered = True
                step = negotiation.receive(reply)
                if step == OPEN:
                    tunnel, sock = sock, None
                    return tunnel
                if step == SAME_CONNECTION:
                    _drain(sock, exchange, deadline)
                else:
                    sock.close()
                    sock = None
    except DeadProxy as e:
        raise (ProxyError(str(e)) if answered else e) from None
    finally:
        if sock is not None:
            sock.close()


def _headers_for(proxy: Proxy, login: Login, spec: ConnectSpec) -> list[tuple[str, str]]:
    """The caller's headers as this proxy gets them: a PAC's proxy the user did not allow gets no
    password, nor a header that may hold one."""
    extra = spec.headers
    if login.kept_by is not None and extra:
        from ncfd.proxy_headers import secret

        held = [name for name, _ in extra if secret(name)]
        if held:
            spec.log(f"{proxy} is named by {login.kept_by}, not by you: the headers {', '.join(held)} are not "
                     f"sent to it unless {spec.credentials.hosts_option} allows it")  # fmt: skip
            extra = [(name, value) for name, value in extra if not secret(name)]
    return extra


def _drain(sock: socket.socket, exchange: ConnectExchange, deadline: Deadline) -> None:
    """Read a refusal's body so the connection can carry the next request."""
    data = None  # first, what came with the headers: an empty body is complete already
    while not exchange.feed_body(data):
        deadline.arm(sock)
        data = sock.recv(65536)


def read_header_block(
    sock: socket.socket, proxy_name: str, deadline: Deadline, waiting: str, socks_fix: str = ""
) -> bytes:
    """Consume exactly one header block: peek, let HeaderBlock say how much is ours, receive that.
    waiting: the step's words for a timeout, which then quotes what the proxy had sent."""
    block = HeaderBlock(proxy_name, socks_fix)
    # A TLS stream (an HTTPS proxy) cannot be peeked at: byte by byte is as exact.
    tls = hasattr(sock, "pending")
    try:
        while not block.done:
            deadline.arm(sock)
            if tls:
                byte = sock.recv(1)
                if not byte:
                    raise block.closed_error()
                block.take(byte)
                continue
            peeked = sock.recv(4096, socket.MSG_PEEK)
            if not peeked:
                raise block.closed_error()
            _consume(sock, block.take(peeked))
    except (TimeoutError, TimedOut):
        expired = deadline.expired(waiting)
        if block.data:  # what a stalled proxy got out tells the user what it is
            raise TimedOut(f'{expired}; it had sent "{first_line(block.data)}"') from None
        raise expired from None
    return block.data


def _consume(sock: socket.socket, size: int) -> None:
    """Take size bytes, already seen by a peek, out of the socket (HeaderBlock holds a copy): they
    are waiting, so no wait is involved."""
    while size:
        chunk = sock.recv(size)
        if not chunk:  # cannot happen after a peek, but a loop must not spin on it
            raise ProxyError("connection closed while reading peeked bytes")
        size -= len(chunk)
