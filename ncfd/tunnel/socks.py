"""SOCKS4, SOCKS4A and SOCKS5 handshakes with PySocks, on a socket we connected ourselves.

PySocks reads replies with exact lengths (an unbuffered makefile), so nothing past the reply leaves
the kernel. Its connect() would open the proxy connection itself (one address, IPv4 only, none of
our socket options), so we give it our connected socket and call its negotiation step. PySocks
1.7.1 is its last release and the version is pinned, so these internals hold still. Each of its
reads and writes is given what is left of the deadline, and a name to be resolved here (SOCKS4,
socks5://) is resolved by us, bounded, before PySocks sees it.
"""

from __future__ import annotations

import socket
import time

import socks

from ncfd.errors import (
    AuthFailed,
    DeadProxy,
    ProxyError,
    ResolveError,
    TimedOut,
    UsageError,
    Withheld,
    broken_handshake,
)
from ncfd.render import host_port

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.deadline import Deadline
    from ncfd.proxies import Proxy
    from ncfd.request import PasswordSource

# A SOCKS5 server answers the greeting (the methods it takes) at once, from its own knowledge: Tor
# does, and builds circuits only after the request. An HTTP proxy, given those three bytes, waits
# silently for the rest of a request line; this bound turns a forgotten -X connect into seconds,
# not the whole deadline. A -w on the command line is the user's own bound, and replaces it.
GREETING_LIMIT = 3.0
# What an HTTP proxy's answer starts with.
_HTTP = b"HTTP/"

# nc's socks5_strerror() and socks4_strerror(), so messages read the same.
SOCKS5_REPLIES = {
    1: "General SOCKS server failure",
    2: "Connection not allowed by ruleset",
    3: "Network unreachable",
    4: "Host unreachable",
    5: "Connection refused",
    6: "TTL expired",
    7: "Command not supported",
    8: "Address type not supported",
}
SOCKS4_REPLIES = {
    91: "Request rejected or failed",
    92: "SOCKS server cannot connect to identd on the client",
    93: "Client program and identd report different user-ids",
}


class _Recording(socks.socksocket):  # type: ignore[misc]
    """Keeps what the proxy sent, so an error can quote it, mends what PySocks sends wrong, and
    gives each read and write what is left of the deadline."""

    received = b""
    _mend: tuple[bytes, bytes] | None = None
    deadline: Deadline
    greeting = False  # SOCKS5: the first answer is to our greeting
    bounded = False  # and is bounded by GREETING_LIMIT

    def _arm(self) -> None:
        # socksocket.settimeout only records the value until it believes it is connected.
        self.deadline.watch(self)
        waiting = self.greeting and not self.received
        left = self.deadline.remaining()
        socket.socket.settimeout(self, min(left, GREETING_LIMIT) if waiting and self.bounded else left)

    def fix_rfc1929(self, username: bytes, password: bytes) -> None:
        """PySocks writes RFC 1929 lengths as chr(n).encode(): two bytes of UTF-8 from 128 on,
        which corrupts the request. Swap in the right bytes when it sends them."""
        wrong = b"\x01" + chr(len(username)).encode() + username + chr(len(password)).encode() + password
        right = b"\x01" + bytes([len(username)]) + username + bytes([len(password)]) + password
        if wrong != right:
            self._mend = (wrong, right)

    def send(self, data, flags=0):  # type: ignore[no-untyped-def]
        self._arm()
        if self._mend is not None and bytes(data) == self._mend[0]:
            socket.socket.sendall(self, self._mend[1], flags)
            return len(data)
        return super().send(data, flags)

    def recv_into(self, buffer, nbytes=0, flags=0):  # type: ignore[no-untyped-def]
        self._arm()
        n = super().recv_into(buffer, nbytes, flags)
        self.received += bytes(memoryview(buffer)[:n])
        return n


def _numeric(host: str) -> str | None:
    """The address an IP literal means (inet_aton rules, as nc: 127.1, scoped IPv6), else None."""
    try:
        info = socket.getaddrinfo(host, None, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        return None
    return str(info[0][4][0])


def _idna(host: str) -> bytes:
    """The name as PySocks will send it, or a usage error instead of its UnicodeError."""
    try:
        return host.encode("idna")
    except UnicodeError as e:
        raise UsageError(f"invalid destination name {host!r}: {e}") from None


def _waiting(sock: socket.socket) -> bytes:
    """What has arrived and not been read, without waiting (with a timeout set, Python would wait
    for readability first, MSG_DONTWAIT or not)."""
    try:
        socket.socket.settimeout(sock, 0)
        return sock.recv(64, socket.MSG_PEEK)
    except OSError:
        return b""


def quote(data: bytes) -> str:
    """Proxy bytes for a message: text if it looks like text (an HTTP or SSH server), else hex."""
    shown = data[:64]
    if shown and all(32 <= b < 127 or b in b"\r\n" for b in shown):
        text = shown.split(b"\n", 1)[0].rstrip(b"\r").decode("ascii")
        return f'"{text}"'
    return shown.hex(" ") + (" ..." if len(data) > 64 else "")


class SocksRequest:
    """A checked SOCKS request; negotiate() runs it on a socket connected to the proxy."""

    def __init__(
        self,
        proxy: Proxy,
        host: str,
        port: int,
        user: str | None = None,
        password: PasswordSource | None = None,
        pac_entry: bool = False,
        greeting_bound: bool = True,
        hint: str = "-P user",
        withheld: Withheld | None = None,
    ) -> None:
        self.proxy, self.host, self.port, self.user = proxy, host, port, user
        self.password = password
        # The error for a proxy that wants a password ncfd keeps from it (ncfd.tunnel.auth_policy).
        self.withheld = withheld
        # What a proxy that wants credentials we lack is told to want (how this face gives them).
        if user is None:
            self.wants = f"it wants a user and password ({hint})"
        elif password is None and proxy.protocol == "5":
            self.wants = f"it wants a password, and none was given for {user}"
        else:
            self.wants = ""
        self.pac_entry = pac_entry  # the proxy is a PAC's: the user has no -X to fix
        self.greeting_bound = greeting_bound
        self.literal = literal = _numeric(host)
        self.target = literal or host
        if proxy.protocol == "5":
            # socks5:// URLs resolve the name here; nc's -X 5 and socks5h:// leave it to the proxy.
            self.type, self.rdns = socks.SOCKS5, proxy.remote_dns
            if literal is None and len(_idna(host)) > 255:
                raise UsageError("host name too long for SOCKS5")
        elif proxy.protocol == "4a":
            self.type, self.rdns = socks.SOCKS4, True
            if literal is None:
                _idna(host)
        else:
            self.type, self.rdns = socks.SOCKS4, False
            if literal is not None and ":" in literal:
                raise UsageError(f"SOCKS4 cannot carry the IPv6 address {host}: use -X 5 or -X 4A")

    def negotiate(self, sock: socket.socket, deadline: Deadline) -> socket.socket:
        """Run the handshake on sock (taken over) and return it, positioned just past the reply."""
        family, type_, proto = sock.family, sock.type, sock.proto
        username, password = self._credentials()
        tunnel = f"waiting for {self.proxy} to open the tunnel to {host_port(self.host, self.port)}"
        with deadline.step(tunnel):
            target = self.target if self.rdns else self._resolved(deadline)
        wrapped = _Recording(family, type_, proto, fileno=sock.detach())
        wrapped.deadline = deadline
        wrapped.greeting = self.type == socks.SOCKS5
        wrapped.bounded = self.greeting_bound
        greeting = f"waiting for the SOCKS5 greeting's answer from {self.proxy}"
        # What a timeout waited for: the greeting's answer while nothing has come, then the tunnel.
        step = deadline.step(lambda: greeting if wrapped.greeting and not wrapped.received else tunnel)
        # PySocks takes str and encodes to UTF-8, as _credentials() measured.
        wrapped.set_proxy(self.type, self.proxy.host, self.proxy.port, self.rdns, username, password)
        if username and password:
            wrapped.fix_rfc1929(username.encode(), password.encode())
        try:
            if self.type == socks.SOCKS5:
                wrapped._negotiate_SOCKS5(target, self.port)
            else:
                wrapped._negotiate_SOCKS4(target, self.port)
            self._check_reserved(wrapped.received)
        except BaseException as e:
            # We are failing anyway: what else the peer sent makes the message (an SSH banner, say).
            received = wrapped.received + _waiting(wrapped)
            wrapped.close()
            timed_out = isinstance(e, TimeoutError)
            silent = wrapped.greeting and not received
            if timed_out and silent and wrapped.bounded and deadline.at - time.monotonic() > 0:
                silent_for = f"{self.proxy} did not answer the SOCKS5 greeting within {GREETING_LIMIT:g}s"
                if self.pac_entry:
                    raise DeadProxy(f"{silent_for}: the PAC names a proxy that is stuck or not SOCKS5") from None
                raise DeadProxy(
                    f"{silent_for}: a SOCKS5 server answers at once, an HTTP proxy never; if it is one, use -X"
                    " connect (or an http:// proxy URL); a slow SOCKS5 server gets longer with -w"
                ) from None
            e = step.failure(e)  # a timeout, or the deadline's end, in the words of what was awaited
            if timed_out and silent and not self.pac_entry and isinstance(e, TimedOut):
                e = TimedOut(f"{e} (an HTTP proxy never answers it: if it is one, use -X connect)")
            if isinstance(e, socks.SOCKS5AuthError) and self.withheld is not None:
                raise self.withheld from None
            raise _translate(e, self.proxy, self.host, self.port, self.user, received, self.wants) from None
        sock = socket.socket(family, type_, proto, fileno=wrapped.detach())
        sock.settimeout(None)
        return sock

    def _resolved(self, deadline: Deadline) -> str:
        """The destination's address, resolved here within the deadline (SOCKS4: IPv4 only)."""
        if self.literal is not None:
            return self.literal
        from ncfd.deadline import call_within

        family = socket.AF_INET if self.type == socks.SOCKS4 else socket.AF_UNSPEC
        try:
            found = call_within(
                deadline,
                lambda: socket.getaddrinfo(self.host, self.port, family, socket.SOCK_STREAM),
                f"resolving {self.host} for {self.proxy}",
            )
        except socket.gaierror as e:
            raise _translate(e, self.proxy, self.host, self.port, self.user, b"", self.wants) from None
        return str(found[0][4][0])

    def _credentials(self) -> tuple[str | None, str | None]:
        """SOCKS4 sends the user as its userid; SOCKS5 does RFC 1929 username/password."""
        if self.user is None or self.type == socks.SOCKS4 or self.password is None:
            return self.user, None  # PySocks then offers SOCKS5 servers no authentication but none
        password = self.password()
        if not 1 <= len(self.user.encode()) <= 255 or not 1 <= len(password.encode()) <= 255:
            raise UsageError("SOCKS5 usernames and passwords are 1 to 255 bytes long (RFC 1929)")
        return self.user, password

    def _check_reserved(self, received: bytes) -> None:
        """PySocks checks versions, reply codes and address types, but not SOCKS5's reserved byte."""
        if self.type != socks.SOCKS5:
            return
        reply = received[4:] if received[1:2] == b"\x02" else received[2:]  # after any RFC 1929 exchange
        if reply[2] != 0:
            raise ProxyError(f"{self.proxy} sent an invalid reply ({quote(received)}): reserved byte is not zero")


def _translate(
    e: BaseException, proxy: Proxy, host: str, port: int, user: str | None, received: bytes, wants: str = ""
) -> BaseException:
    target = host_port(host, port)
    if isinstance(e, TimedOut) and received:
        return TimedOut(f"{e}; it had sent {quote(received)}")
    if isinstance(e, socks.SOCKS5AuthError):
        if received[1:2] == b"\xff":
            why = f": {wants}" if wants else ""
            return AuthFailed(f"{proxy} accepts none of our authentication methods (answered {quote(received)}){why}")
        if wants:
            return AuthFailed(f"{proxy} requires authentication: {wants}")
        return AuthFailed(f"proxy authentication failed for {user} at {proxy}")
    if isinstance(e, (socks.SOCKS5Error, socks.SOCKS4Error)):
        code = int(e.msg.split(":", 1)[0], 16)
        table = SOCKS5_REPLIES if isinstance(e, socks.SOCKS5Error) else SOCKS4_REPLIES
        text = table.get(code, "Unknown error")
        return ProxyError(f"{proxy} could not connect to {target}: {text} (reply code {code})")
    if isinstance(e, socks.GeneralProxyError):
        if "closed unexpectedly" in e.msg:
            if not received:
                return DeadProxy(f"{proxy} closed the connection without answering")
            return ProxyError(f"{proxy} closed the connection in the middle of its reply ({quote(received)})")
        if received.startswith(_HTTP):
            return ProxyError(
                f"{proxy} answered like an HTTP proxy ({quote(received)}): use -X connect (or an http:// URL)"
            )
        return ProxyError(f"{proxy} sent an invalid reply ({quote(received)}): is it a {proxy.kind} proxy?")
    if isinstance(e, socket.gaierror):
        hint = "socks5h:// lets" if proxy.protocol == "5" else "-X 4A or -X 5 let"
        hint += " the proxy resolve it"
        return ResolveError(f'cannot resolve "{host}" for {proxy} ({e.strerror}): {hint}')
    if isinstance(e, OSError):
        return broken_handshake(str(proxy), e, answered=bool(received))
    return e
