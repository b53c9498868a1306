"""What opening a connection takes, as plain values: the faces (the command line, the Python API)
build these, and the core (ncfd.tunnel.failover) takes nothing else.

Plain classes with __slots__: dataclasses would cost start-up time.
"""

from __future__ import annotations

import socket

from ncfd.errors import UsageError
from ncfd.log import quiet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ncfd.deadline import Deadline
    from ncfd.log import Log
    from ncfd.proxies import Proxy

    # A password, asked for only when a proxy wants it (a prompt may be behind it).
    PasswordSource = Callable[[], str]
    # Where the password of a user at a proxy comes from; asked only when the proxy wants it.
    PasswordFor = Callable[[Proxy, str, Deadline], PasswordSource]


class SocketOptions:
    """nc's socket options, for every connection ncfd opens (to the first proxy, or direct)."""

    __slots__ = ("family", "numeric", "rcvbuf", "sndbuf", "so_debug", "source_addr", "source_port", "tos")

    def __init__(self) -> None:
        self.family = socket.AF_UNSPEC
        self.numeric = False  # no DNS: addresses only
        self.so_debug = False
        self.rcvbuf: int | None = None
        self.sndbuf: int | None = None
        self.tos: int | None = None
        self.source_addr: str | None = None
        self.source_port: int | None = None


class Credentials:
    """Who we are to the proxies that ask: the user for proxies without one of their own (-P), or
    else user_for's answer for that proxy; the password source for a user at a proxy; and the only
    HTTP scheme to answer, if one is forced; and how the face gives a user and password, for a
    message saying a proxy wants them. service_name: the Kerberos service a Negotiate proxy is
    asked a ticket for, "service" (at the proxy's name) or "service@host"; HTTP when None. Which
    proxies a PAC named may have them (ncfd.tunnel.auth_policy): those whose names match auth_hosts'
    patterns (None: not given), and those in_netrc says have an entry; hosts_option is how the face
    gives the patterns."""

    __slots__ = ("auth_hosts", "hint", "hosts_option", "in_netrc", "password_for", "scheme", "service_hint",
                 "service_name", "user", "user_for")  # fmt: skip

    def __init__(
        self,
        user: str | None = None,
        password_for: PasswordFor | None = None,
        scheme: str | None = None,
        user_for: Callable[[Proxy], str | None] | None = None,
        hint: str = "-P user",
        service_name: str | None = None,
        service_hint: str = "--proxy-service-name",
        auth_hosts: tuple[str, ...] | None = None,
        in_netrc: Callable[[Proxy], bool] | None = None,
        hosts_option: str = "--proxy-auth-hosts",
    ):
        self.user = user
        self.hint = hint
        self.service_name = service_name
        self.service_hint = service_hint  # how the face names service_name, for a message
        self.password_for = password_for
        self.scheme = scheme
        self.user_for = user_for
        self.auth_hosts = auth_hosts
        self.in_netrc = in_netrc
        self.hosts_option = hosts_option

    def user_of(self, proxy: Proxy) -> str | None:
        if proxy.user is not None or self.user is not None:
            return proxy.user or self.user
        return self.user_for(proxy) if self.user_for is not None else None


def check_service_name(value: str, where: str) -> str:
    """A Kerberos service name as --proxy-service-name and service_name= take it: "service", or
    "service@host"; not a principal (HTTP/host@REALM), which GSSAPI would read as another name."""
    service, at, host = value.partition("@")
    if "/" in value or not service or (at and not host) or any(c.isspace() or not c.isprintable() for c in value):
        raise UsageError(
            f"{where}: invalid Kerberos service name {value!r}: write service (HTTP) or service@host"
            " (HTTP@proxy.example), not a principal (HTTP/proxy.example@REALM)"
        )
    return value


class ClientCert:
    """A TLS client certificate for HTTPS proxies: PEM files, the key in the certificate's file when
    key is None; passphrase is asked (with the deadline, to pause it while a person types) only
    when the key is encrypted."""

    __slots__ = ("cert", "key", "passphrase")

    def __init__(self, cert: str, key: str | None, passphrase: Callable[[Deadline], str]) -> None:
        self.cert, self.key, self.passphrase = cert, key, passphrase


class Route:
    """One way to the destination: through these proxies hop by hop, or direct (no hops)."""

    __slots__ = ("hops", "pac", "source")

    def __init__(self, hops: list[Proxy], pac: bool = False, source: str = "a PAC") -> None:
        self.hops = hops
        # An entry of a PAC's answer: advice to change -X or -x does not apply, and no password
        # goes to the proxy unless the user allows it (ncfd.tunnel.auth_policy).
        self.pac = pac
        self.source = source  # what named it, for messages: "PAC http://...", "WPAD http://..."

    def __str__(self) -> str:
        return " then ".join(str(hop) for hop in self.hops) or "direct"


class ConnectSpec:
    """A connection to open: the destination, the routes to try in order, and how."""

    __slots__ = ("cacert", "client_cert", "credentials", "greeting_bound", "headers", "host", "log", "on_route",
                 "port", "routes", "socket")  # fmt: skip

    def __init__(
        self,
        host: str,
        port: int,
        routes: list[Route],
        *,
        credentials: Credentials | None = None,
        socket_options: SocketOptions | None = None,
        cacert: str | None = None,
        client_cert: ClientCert | None = None,
        log: Log | None = None,
        on_route: Callable[[Route, bool], None] | None = None,
        greeting_bound: bool = True,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.host, self.port, self.routes = host, port, routes
        # Sent with every CONNECT, to each HTTP hop (checked by ncfd.proxy_headers).
        self.headers = headers or []
        # A SOCKS5 proxy silent after the greeting fails in seconds (ncfd.tunnel.socks); off when the
        # user chose the wait (-w), but for a PAC's entries, where silence means a dead proxy.
        self.greeting_bound = greeting_bound
        self.credentials = credentials or Credentials()
        self.socket = socket_options or SocketOptions()
        self.cacert = cacert  # CA certificates also trusted for HTTPS proxies
        self.client_cert = client_cert  # what HTTPS proxies get when they ask for a client certificate
        self.log: Log = log or quiet
        # Told, when there are several routes, whether each one tried was alive (ncfd.route.choice
        # remembers the dead for a while).
        self.on_route = on_route


class Request:
    """A connection to open, as a face asks for it; exactly one route source at most."""

    __slots__ = ("auto", "cacert", "client_cert", "credentials", "env", "greeting_bound", "headers", "host", "pac",
                 "pac_optional", "port", "proxies", "socket_options")  # fmt: skip

    def __init__(
        self,
        host: str,
        port: int,
        *,
        proxies: list[Proxy] | None = None,
        env: Mapping[str, str] | None = None,
        pac: str | None = None,
        auto: bool = False,
        credentials: Credentials,
        socket_options: SocketOptions,
        cacert: str | None = None,
        client_cert: ClientCert | None = None,
        pac_optional: bool = False,
        greeting_bound: bool = True,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.client_cert = client_cert  # for HTTPS proxies only, not https:// PAC servers
        self.greeting_bound = greeting_bound  # as ConnectSpec's
        self.headers = headers or []  # as ConnectSpec's
        self.proxies, self.env, self.pac, self.auto = proxies or [], env, pac, auto
        # A PAC server whose name does not resolve or that refuses, with no copy cached: direct.
        self.pac_optional = pac_optional
        self.credentials, self.socket_options, self.cacert = credentials, socket_options, cacert
