"""Open the connection ssh will get: directly, or through the proxy with its handshake done.

The returned socket is positioned exactly after the proxy's reply: whatever the target has sent
already (sshd's banner) is still in the kernel's receive queue.
"""

from __future__ import annotations

import socket

from ncfd import dial
from ncfd.errors import AuthFailed, ProxyError, TimedOut, broken_handshake

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.deadline import Deadline
    from ncfd.http_connect import ConnectExchange, Reply
    from ncfd.log import Log
    from ncfd.options import Options
    from ncfd.proxies import Proxy
    from ncfd.proxy_auth import Authenticator, Challenge, PasswordSource
    from ncfd.socks_proxy import SocksRequest


MAX_AUTH_ROUNDS = 5


def open_tunnel(opts: Options, deadline: Deadline, log: Log) -> socket.socket:
    if not opts.proxies:
        deadline.phase = f"connecting to {dial.show_host(opts.host)}:{opts.port}"
        return dial.connect(opts.host, opts.port, opts, log, "host")
    return Chain(opts, deadline, log).open()


class Chain:
    """One proxy, or several hop by hop: connect to the first, have it open a tunnel to the second,
    handshake with that one through it, and so on to the destination."""

    def __init__(self, opts: Options, deadline: Deadline, log: Log) -> None:
        self.opts, self.deadline, self.log = opts, deadline, log
        self.hops = opts.proxies
        # Where each hop is asked to go: the next hop, or the destination.
        self.targets = [(h.host, h.port) for h in self.hops[1:]] + [(opts.host, opts.port)]
        self.passwords = [self._password(hop) for hop in self.hops]
        # Built first: a destination a protocol cannot carry fails before any proxy is bothered.
        self.socks: dict[int, SocksRequest] = {}
        for i, (hop, (host, port)) in enumerate(zip(self.hops, self.targets)):
            # Each protocol's library is imported only when a hop speaks it: start-up time.
            if hop.protocol == "connect":
                from ncfd.http_connect import authority

                authority(host, port)
            else:
                from ncfd.socks_proxy import SocksRequest

                self.socks[i] = SocksRequest(hop, host, port, hop.user, self.passwords[i])

    def open(self) -> socket.socket:
        return self.through(len(self.hops) - 1)

    def _password(self, hop: Proxy) -> PasswordSource | None:
        if hop.user is None:
            return None
        if hop.password is not None:
            given = hop.password
            return lambda: given
        from ncfd.password import Password

        return Password(hop.user, str(hop), hop.host, self.opts.password_file, self.deadline)

    def reach(self, i: int) -> socket.socket:
        """A connection whose far end is hop i, with TLS set up when hop i is an HTTPS proxy."""
        hop = self.hops[i]
        if i == 0:
            self.deadline.phase = f"connecting to {hop}"
            sock = dial.connect(hop.host, hop.port, self.opts, self.log, f"{hop.kind} proxy")
        else:
            sock = self.through(i - 1)
        if hop.tls:
            from ncfd.tls import start_tls

            self.deadline.phase = f"waiting for the TLS handshake with {hop}"
            sock = start_tls(sock, hop, self.opts.proxy_cacert, self.log)
        return sock

    def through(self, i: int) -> socket.socket:
        """A connection through hop i to what comes after it."""
        hop, (host, port) = self.hops[i], self.targets[i]
        target = f"{dial.show_host(host)}:{port}"
        if hop.protocol == "connect":
            sock = HttpTunnel(self, i, host, port).open()
        else:
            sock = self.reach(i)
            self.deadline.phase = f"waiting for {hop} to open the tunnel to {target}"
            try:
                sock = self.socks[i].negotiate(sock)
            except BaseException:
                sock.close()
                raise
        self.log(f"{hop} opened the tunnel to {target}")
        return sock


class HttpTunnel:
    """CONNECT through hop i, answering 407 challenges: on the same connection while the proxy
    keeps it open (NTLM must), on a fresh one when it closes; the password is asked once."""

    def __init__(self, chain: Chain, i: int, host: str, port: int) -> None:
        from ncfd.http_connect import authority

        self.chain, self.i, self.host, self.port = chain, i, host, port
        self.proxy = chain.hops[i]
        self.password = chain.passwords[i]
        self.log = chain.log
        self.name = str(self.proxy)
        self.target = authority(host, port)

    def open(self) -> socket.socket:
        from ncfd.http_connect import ConnectExchange

        credentials: str | None = None
        auth: Authenticator | None = None
        sock: socket.socket | None = None
        try:
            for _ in range(MAX_AUTH_ROUNDS):
                if sock is None:
                    sock = self.chain.reach(self.i)
                    self.chain.deadline.phase = f"waiting for {self.name} to open the tunnel to {self.target}"
                headers = [("Proxy-Authorization", credentials)] if credentials else None
                exchange = ConnectExchange(self.host, self.port, self.name, headers)
                reply = self._ask(sock, exchange, auth)
                if 200 <= reply.status < 300:
                    tunnel, sock = sock, None
                    return tunnel
                auth = self._authenticator(reply, auth)
                credentials = auth.respond(self._challenges(reply))
                if credentials is None:
                    raise AuthFailed(f"proxy authentication failed for {self.proxy.user} at {self.name}")
                if reply.reusable:
                    self._drain(sock, exchange)
                    continue
                if auth.connection_bound():
                    raise ProxyError(f"{self.name} closed the connection in the middle of {auth.scheme} authentication")
                sock.close()
                sock = None
            raise AuthFailed(f"proxy authentication failed for {self.proxy.user} at {self.name}")
        except OSError as e:
            raise broken_handshake(self.name, e) from None
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
        user = self.proxy.user
        if user is None or self.password is None:
            raise AuthFailed(f"{refusal}: it wants authentication (-P user)")
        from ncfd.proxy_auth import authenticator, choose_scheme

        scheme = choose_scheme(self._challenges(reply), self.chain.opts.proxy_auth, self.name)
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
    from ncfd.http_connect import HeaderBlock, first_line

    block = HeaderBlock(proxy_name)
    # A TLS stream (an HTTPS proxy) cannot be peeked at: byte by byte is as exact.
    tls = hasattr(sock, "pending")
    try:
        while not block.done:
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
    except TimedOut as e:
        if block.data:  # what a stalled proxy got out tells the user what it is
            raise TimedOut(f'{e}; it had sent "{first_line(block.data)}"') from None
        raise
    return block.data


def _consume(sock: socket.socket, size: int) -> None:
    """Take size bytes, already seen by a peek, out of the socket (HeaderBlock holds a copy)."""
    while size:
        chunk = sock.recv(size)
        if not chunk:  # cannot happen after a peek, but a loop must not spin on it
            raise ProxyError("connection closed while reading peeked bytes")
        size -= len(chunk)
