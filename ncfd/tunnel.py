"""Open the connection ssh will get: directly, or through the proxy with its handshake done.

The returned socket is positioned exactly after the proxy's reply: whatever the target has sent
already (sshd's banner) is still in the kernel's receive queue.
"""

from __future__ import annotations

import socket

from ncfd import dial
from ncfd.errors import AuthFailed, ProxyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.deadline import Deadline
    from ncfd.http_connect import ConnectExchange, Reply
    from ncfd.log import Log
    from ncfd.options import Options, Proxy
    from ncfd.password import Password
    from ncfd.proxy_auth import Authenticator, Challenge


MAX_AUTH_ROUNDS = 5


def open_tunnel(opts: Options, deadline: Deadline, log: Log) -> socket.socket:
    proxy = opts.proxy
    target = f"{dial.show_host(opts.host)}:{opts.port}"
    if proxy is None:
        deadline.phase = f"connecting to {target}"
        return dial.connect(opts.host, opts.port, opts, log, "host")
    password = None
    if opts.proxy_user is not None:
        from ncfd.password import Password

        password = Password(opts.proxy_user, str(proxy), proxy.host, opts.password_file, deadline)
    if proxy.protocol == "connect":
        sock = HttpTunnel(opts, proxy, password, deadline, log).open()
    else:
        from ncfd.socks_proxy import SocksRequest

        # Built first: a destination the protocol cannot carry fails before the proxy is bothered.
        request = SocksRequest(proxy, opts.host, opts.port, opts.proxy_user, password)
        sock = _dial_proxy(opts, proxy, deadline, log)
        try:
            sock = request.negotiate(sock)
        except BaseException:
            sock.close()
            raise
    log(f"{proxy} opened the tunnel to {target}")
    return sock


def _dial_proxy(opts: Options, proxy: Proxy, deadline: Deadline, log: Log) -> socket.socket:
    deadline.phase = f"connecting to {proxy}"
    sock = dial.connect(proxy.host, proxy.port, opts, log, f"{proxy.kind} proxy")
    deadline.phase = f"waiting for {proxy} to open the tunnel to {dial.show_host(opts.host)}:{opts.port}"
    return sock


class HttpTunnel:
    """CONNECT, answering 407 challenges: on the same connection while the proxy keeps it open
    (NTLM must), on a fresh one when it closes; the password is asked once and reused."""

    def __init__(self, opts: Options, proxy: Proxy, password: Password | None, deadline: Deadline, log: Log):
        from ncfd.http_connect import authority

        self.opts, self.proxy, self.password, self.deadline, self.log = opts, proxy, password, deadline, log
        self.name = str(proxy)
        self.target = authority(opts.host, opts.port)  # refuses a bad destination before connecting

    def open(self) -> socket.socket:
        from ncfd.http_connect import ConnectExchange

        credentials: str | None = None
        auth: Authenticator | None = None
        sock: socket.socket | None = None
        try:
            for _ in range(MAX_AUTH_ROUNDS):
                if sock is None:
                    sock = _dial_proxy(self.opts, self.proxy, self.deadline, self.log)
                headers = [("Proxy-Authorization", credentials)] if credentials else None
                exchange = ConnectExchange(self.opts.host, self.opts.port, self.name, headers)
                reply = self._ask(sock, exchange, auth)
                if 200 <= reply.status < 300:
                    tunnel, sock = sock, None
                    return tunnel
                auth = self._authenticator(reply, auth)
                credentials = auth.respond(self._challenges(reply))
                if credentials is None:
                    raise AuthFailed(f"proxy authentication failed for {self.opts.proxy_user} at {self.name}")
                if reply.reusable:
                    self._drain(sock, exchange)
                    continue
                if auth.connection_bound():
                    raise ProxyError(f"{self.name} closed the connection in the middle of {auth.scheme} authentication")
                sock.close()
                sock = None
            raise AuthFailed(f"proxy authentication failed for {self.opts.proxy_user} at {self.name}")
        except OSError as e:
            raise ProxyError(f"{self.name} handshake failed: {e.strerror or e}") from None
        finally:
            if sock is not None:
                sock.close()

    def _ask(self, sock: socket.socket, exchange: ConnectExchange, auth: Authenticator | None) -> Reply:
        what = f" with {auth.scheme} credentials" if auth else ""
        self.log(f"sending CONNECT {exchange.target}{what}")
        sock.sendall(exchange.request)
        while True:
            reply = exchange.feed(read_header_block(sock, self.name))
            if reply is not None:
                self.log(f'{self.name} answered "{reply.line}"')
                return reply

    def _authenticator(self, reply: Reply, auth: Authenticator | None) -> Authenticator:
        refusal = f'{self.name} refused CONNECT {self.target}: "{reply.line}"'
        # tinyproxy answers wrong credentials with 401.
        if reply.status != 407 and not (reply.status == 401 and auth is not None):
            raise ProxyError(refusal)
        if auth is not None:
            return auth
        user = self.opts.proxy_user
        if user is None or self.password is None:
            raise AuthFailed(f"{refusal}: it wants authentication (-P user)")
        from ncfd.proxy_auth import authenticator, choose_scheme

        scheme = choose_scheme(self._challenges(reply), self.opts.proxy_auth, self.name)
        self.log(f"answering {self.name}'s {scheme} challenge as {user}")
        return authenticator(scheme, user, self.password, self.target, self.proxy.host)

    @staticmethod
    def _challenges(reply: Reply) -> list[Challenge]:
        from ncfd.proxy_auth import parse_challenges

        return parse_challenges(reply.values(b"proxy-authenticate"))

    @staticmethod
    def _drain(sock: socket.socket, exchange: ConnectExchange) -> None:
        """Read a refusal's body so the connection can carry the next request."""
        while not exchange.feed_body(sock.recv(65536)):
            pass


def read_header_block(sock: socket.socket, proxy_name: str) -> bytes:
    """Consume exactly one header block: peek, let HeaderBlock say how much is ours, receive that."""
    from ncfd.http_connect import HeaderBlock

    block = HeaderBlock(proxy_name)
    while not block.done:
        peeked = sock.recv(4096, socket.MSG_PEEK)
        if not peeked:
            raise block.closed_error()
        _recv_exact(sock, block.take(peeked))
    return block.data


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    # The bytes were peeked, so they are there; a loop only guards against a short recv.
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise ProxyError("connection closed while reading peeked bytes")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
