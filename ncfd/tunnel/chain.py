"""One route's proxies, hop by hop, each handshake done: the connection positioned exactly after
the last proxy's reply, whatever the target has sent already (sshd's banner) still in the kernel's
receive queue. Every read and write is given what is left of the deadline, so no step, and no proxy
dripping bytes, outlasts it.
"""

from __future__ import annotations

import socket

from ncfd.deadline import shown
from ncfd.errors import AuthFailed, DeadProxy, ProxyError, TimedOut, Withheld, broken_handshake
from ncfd.log import enabled
from ncfd.net import dial

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from ncfd.deadline import Deadline
    from ncfd.proxies import Proxy
    from ncfd.request import ConnectSpec, Route
    from ncfd.tunnel.gss import KerberosError
    from ncfd.tunnel.http_connect import ConnectExchange, Reply
    from ncfd.tunnel.proxy_auth import Authenticator, Challenge, PasswordSource
    from ncfd.tunnel.socks import SocksRequest

    T = TypeVar("T")


MAX_AUTH_ROUNDS = 5


class Chain:
    """One proxy, or several hop by hop: connect to the first, have it open a tunnel to the second,
    handshake with that one through it, and so on to the destination."""

    def __init__(self, spec: ConnectSpec, route: Route, deadline: Deadline) -> None:
        self.spec, self.deadline, self.log = spec, deadline, spec.log
        self.hops = route.hops
        self.pac = route.pac
        # Where each hop is asked to go: the next hop, or the destination.
        self.targets = [(h.host, h.port) for h in self.hops[1:]] + [(spec.host, spec.port)]
        self.users = [spec.credentials.user_of(hop) for hop in self.hops]
        self.source = route.source
        # Hops a password must not go to: a PAC named them, and the user did not allow them.
        self.kept = [route.pac and not self._allowed(hop) for hop in self.hops]
        self.passwords = [None if kept else self._password(hop, user)
                          for hop, user, kept in zip(self.hops, self.users, self.kept, strict=True)]  # fmt: skip
        # Built first: a destination a protocol cannot carry fails before any proxy is bothered.
        self.socks: dict[int, SocksRequest] = {}
        for i, (hop, (host, port)) in enumerate(zip(self.hops, self.targets, strict=True)):
            # Each protocol's library is imported only when a hop speaks it: start-up time.
            if hop.protocol == "connect":
                from ncfd.tunnel.http_connect import authority

                authority(host, port)
            else:
                from ncfd.tunnel.socks import SocksRequest

                bound = spec.greeting_bound or route.pac
                kept = self.withheld(i) if self.kept[i] and hop.protocol == "5" else None
                self.socks[i] = SocksRequest(hop, host, port, self.users[i], self.passwords[i], route.pac, bound,
                                             spec.credentials.hint, kept)  # fmt: skip

    def open(self) -> socket.socket:
        return self.through(len(self.hops) - 1)

    def _allowed(self, hop: Proxy, kerberos: bool = False) -> bool:
        from ncfd.tunnel import auth_policy

        allowed = auth_policy.allowed(self.spec.credentials, hop, True, kerberos)
        if not allowed and not kerberos and self.spec.credentials.user_of(hop) is not None:
            self.log(f"{hop} is named by {self.source}, not by you: it gets no password unless "
                     f"{self.spec.credentials.hosts_option} allows it")  # fmt: skip
        return allowed

    def withheld(self, i: int, kerberos: bool = False) -> Withheld:
        from ncfd.tunnel import auth_policy

        return auth_policy.withheld(self.spec.credentials, self.hops[i], self.source, kerberos, self.users[i])

    def _password(self, hop: Proxy, user: str | None) -> PasswordSource | None:
        if user is None:
            return None
        if hop.password is not None:
            given = hop.password
            return lambda: given
        password_for = self.spec.credentials.password_for
        return None if password_for is None else password_for(hop, user, self.deadline)

    def reach(self, i: int) -> socket.socket:
        """A connection whose far end is hop i, with TLS set up when hop i is an HTTPS proxy."""
        hop = self.hops[i]
        if i == 0:
            self.deadline.phase = f"connecting to {hop}"
            sock = dial.connect(hop.host, hop.port, self.spec.socket, self.deadline, self.log, f"{hop.kind} proxy")
        else:
            sock = self.through(i - 1)
        if hop.tls:
            from ncfd.net.tls import start_tls

            self.deadline.phase = f"waiting for the TLS handshake with {hop}"
            sock = start_tls(sock, hop.host, str(hop), self.spec.cacert, self.deadline, self.log,
                             self.spec.client_cert)  # fmt: skip
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
            if self.users[i] is not None:
                how = "username/password" if hop.protocol == "5" and self.passwords[i] is not None else "userid"
                self.log(f"asking {hop} for the tunnel to {target} with {how} {self.users[i]}")
            try:
                sock = self.socks[i].negotiate(sock, self.deadline)
            except BaseException:
                sock.close()
                raise
        self.log(f"{hop} opened the tunnel to {target}")
        return sock


class HttpTunnel:
    """CONNECT through hop i, answering 407 challenges: on the same connection while the proxy
    keeps it open (NTLM must), on a fresh one when it closes; the password is asked once."""

    def __init__(self, chain: Chain, i: int, host: str, port: int) -> None:
        from ncfd.tunnel.http_connect import authority

        self.chain, self.i, self.host, self.port = chain, i, host, port
        self.proxy = chain.hops[i]
        self.user = chain.users[i]
        self.password = chain.passwords[i]
        self.deadline = chain.deadline
        self.log = chain.log
        self.name = str(self.proxy)
        self.target = authority(host, port)
        # A SOCKS server named as a plain HTTP proxy on the command line: -X 5 is the fix.
        self.socks_fix = "" if chain.pac or self.proxy.tls else "if it is one, use -X 5 (or a socks5h:// proxy URL)"
        self.extra = chain.spec.headers
        if chain.kept[i] and self.extra:
            # A PAC's proxy the user did not allow gets no password, nor a header that may hold one.
            from ncfd.proxy_headers import secret

            held = [name for name, _ in self.extra if secret(name)]
            if held:
                self.log(f"{self.name} is named by {chain.source}, not by you: the headers {', '.join(held)} are not "
                         f"sent to it unless {chain.spec.credentials.hosts_option} allows it")  # fmt: skip
                self.extra = [(name, value) for name, value in self.extra if not secret(name)]
        # The caller's own Proxy-Authorization: ncfd adds none of its own.
        self.authorized = any(name.lower() == "proxy-authorization" for name, _ in self.extra)

    def open(self) -> socket.socket:
        from ncfd.tunnel.http_connect import ConnectExchange

        credentials: str | None = None
        auth: Authenticator | None = None
        sock: socket.socket | None = None
        answered = False  # once the proxy has answered, it is alive: its failures end the run
        try:
            for _ in range(MAX_AUTH_ROUNDS):
                if sock is None:
                    sock = self.chain.reach(self.i)
                    self.deadline.phase = f"waiting for {self.name} to open the tunnel to {self.target}"
                headers = [("Proxy-Authorization", credentials)] if credentials else None
                exchange = ConnectExchange(self.host, self.port, self.name, headers, self.extra)
                reply = self._ask(sock, exchange, auth)
                answered = True
                if 200 <= reply.status < 300:
                    note = auth.finish(self._challenges(reply)) if auth is not None else None
                    if note:
                        self.log(note)
                    tunnel, sock = sock, None
                    return tunnel
                auth = self._authenticator(reply, auth)
                auth, credentials = self._respond(auth, reply)
                if credentials is None:
                    raise self._rejected(auth)
                if reply.reusable:
                    self._drain(sock, exchange)
                    continue
                if auth.connection_bound():
                    raise ProxyError(f"{self.name} closed the connection in the middle of {auth.scheme} authentication")
                sock.close()
                sock = None
            raise self._rejected(auth)
        except TimeoutError:
            raise self.deadline.expired() from None
        except OSError as e:
            if self.proxy.tls and sock is not None:  # TLS 1.3: a refusal of our certificate comes after the handshake
                from ncfd.net.tls import refusal_after

                refused = refusal_after(sock, e, self.name, self.chain.spec.client_cert)
                if refused is not None:
                    raise refused from None
            raise broken_handshake(self.name, e, answered) from None
        except DeadProxy as e:
            raise (ProxyError(str(e)) if answered else e) from None
        finally:
            if sock is not None:
                sock.close()

    def _ask(self, sock: socket.socket, exchange: ConnectExchange, auth: Authenticator | None) -> Reply:
        what = f" with {auth.scheme} credentials" if auth else ""
        if self.extra and enabled(self.log):
            from ncfd.proxy_headers import shown

            what += f" and the headers {shown(self.extra)}" if auth else f" with the headers {shown(self.extra)}"
        self.log(f"sending CONNECT {exchange.target}{what}")
        self.deadline.arm(sock)
        sock.sendall(exchange.request)
        while True:
            reply = exchange.feed(read_header_block(sock, self.name, self.deadline, self.socks_fix))
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
        if self.authorized:
            raise AuthFailed(f"{refusal}: it did not take the Proxy-Authorization header given")
        from ncfd.tunnel.proxy_auth import STRENGTH, NoUser, authenticator, choose_scheme

        forced = self.chain.spec.credentials.scheme
        challenges = self._challenges(reply)
        # A password allowed means a ticket allowed: ncfd.tunnel.auth_policy's list is the same for both.
        kerberos = not self.chain.kept[self.i] or self.chain._allowed(self.proxy, kerberos=True)
        try:
            scheme = choose_scheme(challenges, forced, self.name, self.password is not None, kerberos)
        except NoUser:
            if self.chain.kept[self.i]:
                wants_password = forced != "negotiate" and any(c.scheme in STRENGTH[1:] for c in challenges)
                raise self.chain.withheld(self.i, kerberos=not wants_password) from None
            if self.user is not None:  # and no password: the API's user= alone
                raise AuthFailed(f"{refusal}: it wants a password, and none was given for {self.user}") from None
            raise AuthFailed(f"{refusal}: it wants authentication ({self.chain.spec.credentials.hint})") from None
        if scheme == "negotiate":
            return self._kerberos()
        self.log(f"answering {self.name}'s {scheme} challenge as {self.user}")
        return authenticator(scheme, self.user, self.password, self.target, self.proxy.host)

    def _kerberos(self) -> Authenticator:
        """Negotiate with the user's Kerberos ticket, or, with no GSSAPI on this system and a
        password at hand, NTLM inside Negotiate."""
        from ncfd.deadline import bounded
        from ncfd.tunnel import gss
        from ncfd.tunnel.proxy_auth import Kerberos

        service = Kerberos.service_for(self.proxy.host, self.chain.spec.credentials.service_name)
        try:
            # Naming the proxy's principal may ask DNS (krb5.conf's dns_canonicalize_hostname).
            auth = bounded(self.deadline, lambda: Kerberos(service), f"naming the Kerberos principal {service}")
        except gss.Unavailable:
            if self.password is None:
                raise
            return self._ntlm_instead("this system has no GSSAPI library")
        if enabled(self.log):  # only for -v: asking who we are may fetch a ticket (a client keytab)
            who = self._from_kdc(
                lambda: f"{gss.whoami() or 'no ticket yet'}, credential cache {gss.credential_cache()}", auth.service
            )
            self.log(f"answering {self.name}'s negotiate challenge with Kerberos for {auth.service}: {who}")
        return auth

    def _ntlm_instead(self, why: str) -> Authenticator:
        from ncfd.tunnel.proxy_auth import authenticator

        assert self.user is not None and self.password is not None
        self.log(f"{why}: answering {self.name}'s negotiate challenge with NTLM as {self.user}")
        return authenticator("ntlm-in-negotiate", self.user, self.password, self.target, self.proxy.host)

    def _respond(self, auth: Authenticator, reply: Reply) -> tuple[Authenticator, str | None]:
        """auth's answer to reply's challenges; Kerberos' first leg, which may wait for the KDC, in
        a helper thread bounded by the deadline (the library takes no timeout). No ticket at all
        and a password: NTLM inside Negotiate, as browsers fall back."""
        challenges = self._challenges(reply)
        if not auth.blocking:
            return auth, auth.respond(challenges)
        from ncfd.tunnel import gss

        service = getattr(auth, "service", "")
        try:
            return auth, self._from_kdc(lambda: auth.respond(challenges), service)
        except gss.KerberosError as e:
            if e.kind == "no-ticket" and self.password is not None:
                fallback = self._ntlm_instead("no Kerberos ticket")
                return fallback, fallback.respond(challenges)
            hint = self.chain.spec.credentials.service_hint
            raise AuthFailed(_kerberos_message(e, self.name, service, hint)) from None

    def _from_kdc(self, call: Callable[[], T], service: str) -> T:
        """call(), which may wait for the KDC, in a helper thread bounded by the deadline (the
        GSSAPI library takes no timeout)."""
        from ncfd.deadline import bounded

        try:
            return bounded(self.deadline, call, f"waiting for the Kerberos KDC ({service})")
        except TimedOut:
            raise AuthFailed(
                f"no answer from the Kerberos KDC within {shown(self.deadline.seconds)}s, getting a ticket for "
                f"{service} (for {self.name})"
            ) from None

    def _rejected(self, auth: Authenticator | None) -> AuthFailed:
        if auth is not None and auth.scheme == "negotiate" and auth.blocking:
            from ncfd.deadline import bounded
            from ncfd.tunnel import gss

            try:
                who = bounded(self.deadline, gss.whoami, "asking Kerberos for the user's name") or "the user"
            except TimedOut:  # the rejection is the news, not who was rejected
                who = "the user"
            return AuthFailed(f"{self.name} rejected the Kerberos ticket of {who} for {getattr(auth, 'service', '')}")
        return AuthFailed(f"proxy authentication failed for {self.user} at {self.name}")

    @staticmethod
    def _challenges(reply: Reply) -> list[Challenge]:
        from ncfd.tunnel.proxy_auth import parse_challenges

        return parse_challenges(reply.values(b"proxy-authenticate"))

    def _drain(self, sock: socket.socket, exchange: ConnectExchange) -> None:
        """Read a refusal's body so the connection can carry the next request."""
        data = None  # first, what came with the headers: an empty body is complete already
        while not exchange.feed_body(data):
            self.deadline.arm(sock)
            data = sock.recv(65536)


def _kerberos_message(e: KerberosError, proxy: str, service: str, service_hint: str) -> str:
    if e.kind == "no-ticket":
        return (f"{proxy} wants Kerberos (Negotiate) and there is no Kerberos ticket: run kinit (the proxy's "
                f"principal is {service}), or give -P user for NTLM")  # fmt: skip
    if e.kind == "expired":
        return f"the Kerberos ticket has expired ({e.detail}): run kinit (for {service} at {proxy})"
    if e.kind == "unknown-service":
        return (f"the Kerberos KDC does not know {proxy}'s principal {service} ({e.detail}): name the proxy as "
                "it is registered, let krb5.conf canonicalize names (dns_canonicalize_hostname), or give the "
                f"principal's service@host ({service_hint})")  # fmt: skip
    if e.kind == "kdc-unreachable":
        return f"cannot reach the Kerberos KDC for a ticket for {service} (for {proxy}): {e.detail}"
    return f"Kerberos authentication at {proxy} failed: {e.detail}"


def read_header_block(sock: socket.socket, proxy_name: str, deadline: Deadline, socks_fix: str = "") -> bytes:
    """Consume exactly one header block: peek, let HeaderBlock say how much is ours, receive that."""
    from ncfd.tunnel.http_connect import HeaderBlock, first_line

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
        expired = deadline.expired()
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
