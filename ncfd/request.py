"""What opening a connection takes, as plain values: the faces (the command line, the Python API)
build these, and the core (ncfd.tunnel.failover) takes nothing else. A Request and its Credentials
check what holds across their values (one route source, a chain of proxy URLs, a key with its
certificate, ...) as they are made, once for both faces: each gives its own Words for the options,
so that its messages name them as its users write them.

Plain classes with __slots__: dataclasses would cost start-up time.
"""

from __future__ import annotations

import socket

from ncfd.errors import UsageError
from ncfd.log import quiet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

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
    patterns (comma-separated, in one string or several; None: not given), and those in_netrc says
    have an entry; hosts_option is how the face gives the patterns. given: the face was given a
    user or password of its own for proxies (not a proxy URL's user@), which a Proxy-Authorization
    header of the caller's would go against."""

    __slots__ = ("auth_hosts", "given", "hint", "hosts_option", "in_netrc", "password_for", "scheme",
                 "service_hint", "service_name", "user", "user_for")  # fmt: skip

    def __init__(
        self,
        user: str | None = None,
        password_for: PasswordFor | None = None,
        scheme: str | None = None,
        user_for: Callable[[Proxy], str | None] | None = None,
        hint: str = "-P user",
        service_name: str | None = None,
        service_hint: str = "--proxy-service-name",
        auth_hosts: str | Sequence[str] | None = None,
        in_netrc: Callable[[Proxy], bool] | None = None,
        hosts_option: str = "--proxy-auth-hosts",
        given: bool = False,
    ):
        if service_name is not None:
            check_service_name(service_name, service_hint)
        self.user = user
        self.hint = hint
        self.service_name = service_name
        self.service_hint = service_hint  # how the face names service_name, for a message
        self.password_for = password_for
        self.scheme = scheme
        self.user_for = user_for
        self.auth_hosts = None if auth_hosts is None else patterns(auth_hosts)
        self.in_netrc = in_netrc
        self.hosts_option = hosts_option
        self.given = given

    def user_of(self, proxy: Proxy) -> str | None:
        if proxy.user is not None or self.user is not None:
            return proxy.user or self.user
        return self.user_for(proxy) if self.user_for is not None else None


def check_service_name(value: str, where: str) -> None:
    """A Kerberos service name as --proxy-service-name and service_name= take it: "service", or
    "service@host"; not a principal (HTTP/host@REALM), which GSSAPI would read as another name."""
    service, at, host = value.partition("@")
    if "/" in value or not service or (at and not host) or any(c.isspace() or not c.isprintable() for c in value):
        raise UsageError(
            f"{where}: invalid Kerberos service name {value!r}: write service (HTTP) or service@host"
            " (HTTP@proxy.example), not a principal (HTTP/proxy.example@REALM)"
        )


def patterns(given: str | Sequence[str]) -> tuple[str, ...]:
    """--proxy-auth-hosts' (auth_hosts=') shell-style patterns: comma-separated, in one string or
    several."""
    text = given if isinstance(given, str) else ",".join(given)
    return tuple(pattern.strip() for pattern in text.split(",") if pattern.strip())


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

    __slots__ = (
        "cacert",
        "client_cert",
        "credentials",
        "greeting_bound",
        "headers",
        "host",
        "log",
        "port",
        "route_verdict",
        "routes",
        "socket",
    )  # fmt: skip

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
        route_verdict: Callable[[Route, bool], None] | None = None,
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
        self.route_verdict = route_verdict


class Words:
    """How a face names a request's options in its messages: -x and --proxy-pac on the command
    line, proxy and pac in the API. env is None where the face has no such option."""

    __slots__ = ("auto", "cert", "chain", "env", "key", "pac", "pac_optional", "proxy", "users")

    def __init__(
        self,
        *,
        proxy: str,
        env: str | None,
        pac: str,
        auto: str,
        pac_optional: str,
        cert: str,
        key: str,
        chain: str,
        users: str,
    ) -> None:
        self.proxy, self.env, self.pac, self.auto, self.pac_optional = proxy, env, pac, auto, pac_optional
        self.cert, self.key = cert, key
        self.chain = chain  # "a proxy chain", as the face gives one
        self.users = users  # how it gives the user and password ncfd authenticates with


class Request:
    """A connection to open, as a face asks for it; a usage error, in the face's words, when its
    values do not go together."""

    __slots__ = ("auto", "cacert", "client_cert", "credentials", "env", "greeting_bound", "headers", "host", "pac",
                 "pac_optional", "port", "proxies", "socket_options")  # fmt: skip

    def __init__(
        self,
        host: str,
        port: int,
        *,
        words: Words,
        proxies: Sequence[str] = (),
        protocol: str | None = None,
        env: Mapping[str, str] | None = None,
        pac: str | None = None,
        auto: bool = False,
        pac_optional: bool = False,
        credentials: Credentials,
        socket_options: SocketOptions,
        cacert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        passphrase: Callable[[Deadline], str] | None = None,
        greeting_bound: bool = True,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """proxies: one proxy (a URL, or host:port of the protocol given) or a chain of URLs, hop by
        hop; env, pac, auto: the other route sources (ncfd.route.choice); cert, key: a TLS client
        certificate for HTTPS proxies, with the source of an encrypted key's passphrase."""
        from ncfd.proxies import check_chain, parse_proxy

        given = ((words.proxy, proxies), (words.env, env is not None), (words.pac, pac is not None),
                 (words.auto, auto))  # fmt: skip
        chosen = [word for word, source in given if source and word]
        if len(chosen) > 1:
            raise UsageError(f"{' and '.join(chosen)} exclude each other: each chooses the route")
        if key is not None and cert is None:
            raise UsageError(f"{words.key} goes with {words.cert} (the certificate the key is for)")
        if pac_optional and pac is None:
            raise UsageError(f"{words.pac_optional} goes with {words.pac}")
        if len(proxies) > 1 and not all("://" in v for v in proxies):
            raise UsageError(f"{words.chain} is written as proxy URLs: socks5h://, http://, ...")
        hops = [parse_proxy(v, protocol) for v in proxies]
        if hops and socket_options.source_addr is not None:
            raise UsageError("no proxy support for local source address")
        check_chain(hops)
        if headers:
            from ncfd.proxy_headers import check_authorization

            users = credentials.given or any(hop.user for hop in hops if hop.protocol == "connect")
            check_authorization(headers, users, words.users)
        self.host, self.port = host, port
        self.client_cert = None  # for HTTPS proxies only, not https:// PAC servers
        if cert is not None:
            assert passphrase is not None, "a face gives the passphrase's source with the certificate"
            self.client_cert = ClientCert(cert, key, passphrase)
        self.greeting_bound = greeting_bound  # as ConnectSpec's
        self.headers = headers or []  # as ConnectSpec's
        self.proxies, self.env, self.pac, self.auto = hops, env, pac, auto
        # A PAC server whose name does not resolve or that refuses, with no copy cached: direct.
        self.pac_optional = pac_optional
        self.credentials, self.socket_options, self.cacert = credentials, socket_options, cacert
