"""Proxy addresses: nc's -x form (host[:port] with -X) and curl's proxy URLs (socks5h://, http://,
https://, ...), into Proxy objects; ports and numbers as nc checks them."""

from __future__ import annotations

import socket

from ncfd.errors import UsageError
from ncfd.render import credentials, host_port, library_message, printable, redacted

SOCKS_PORT = 1080
HTTP_PROXY_PORT = 3128
HTTPS_PROXY_PORT = 443

PROTOCOLS = {"connect": "connect", "4": "4", "4a": "4a", "5": "5"}
PROTOCOL_NAMES = {"connect": "HTTP", "4": "SOCKS4", "4a": "SOCKS4A", "5": "SOCKS5"}
# URL scheme: (protocol, TLS to the proxy, names resolved by the proxy), as curl reads them.
URL_SCHEMES = {
    "http": ("connect", False, True),
    "https": ("connect", True, True),
    "socks4": ("4", False, False),
    "socks4a": ("4a", False, True),
    "socks5": ("5", False, False),
    "socks5h": ("5", False, True),
}


class Proxy:
    __slots__ = ("host", "password", "port", "protocol", "remote_dns", "tls", "user")

    def __init__(
        self,
        host: str,
        port: int,
        protocol: str,
        *,
        tls: bool = False,
        remote_dns: bool = True,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.protocol = protocol
        self.tls = tls
        # SOCKS5 only: socks5:// resolves the target here and sends the address.
        self.remote_dns = remote_dns
        self.user = user
        self.password = password

    @property
    def kind(self) -> str:
        return "HTTPS" if self.tls else PROTOCOL_NAMES[self.protocol]

    def __str__(self) -> str:
        return f"{self.kind} proxy {host_port(self.host, self.port)}"


def number(value: str, what: str, low: float, high: float, integer: bool = True) -> float:
    try:
        result = int(value) if integer else float(value)
    except ValueError:
        raise UsageError(f"{what} invalid: {value}") from None
    if result != result:  # NaN
        raise UsageError(f"{what} invalid: {value}")
    if result < low:
        raise UsageError(f"{what} too small: {value}")
    if result > high:
        raise UsageError(f"{what} too large: {value}")
    return result


def parse_port(value: str, what: str = "port number") -> int:
    if value.isdigit():
        return int(number(value, what, 1, 65535))
    if value.startswith("-") and value[1:].isdigit():
        raise UsageError(f"{what} too small: {value}")
    if "-" in value.strip("-"):
        raise UsageError(f"{what} invalid: {value} (port ranges are not supported)")
    try:
        return socket.getservbyname(value, "tcp")
    except OSError:
        raise UsageError(f"{what} invalid: {value}") from None


def parse_protocol(value: str, hints: dict[str, str] | None = None) -> str:
    """-X's value, the API's protocol=: connect, 4, 4A or 5, as any case; hints: what the face
    says to a name it has another word for."""
    if value.lower() in PROTOCOLS:
        return PROTOCOLS[value.lower()]
    hint = f"; {hints[value.lower()]}" if hints and value.lower() in hints else ""
    raise UsageError(f"unsupported proxy protocol {value!r} (use connect, 4, 4A or 5{hint})")


def parse_proxy(value: str, protocol: str | None) -> Proxy:
    """A -x value: a URL, whose scheme must agree with -X if given, or nc's host[:port] form."""
    if "://" in value:
        proxy = parse_proxy_url(value)
        if protocol is not None and protocol != proxy.protocol:
            raise UsageError(f"-X {protocol} conflicts with the proxy URL {redacted(value)}")
        return proxy
    return parse_proxy_address(value, protocol or "5")


def parse_proxy_address(value: str, protocol: str) -> Proxy:
    """nc's -x rules: [v6]:port, host:port, host; the protocol's well-known port by default."""
    if "@" in value:
        # What comes before it would be read as a host and a port, and shown as such: a password.
        raise UsageError(
            f'a proxy written host:port has no user: "...@{printable(value.rpartition("@")[2])}" (put the user in a'
            " proxy URL, socks5h://user@host, or give -P user)"
        )
    port: str | None
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep:
            raise UsageError(f'missing closing bracket in proxy "{value}" (write [addr] or [addr]:port)')
        if rest and not rest.startswith(":"):
            raise UsageError(f'garbage proxy port delimiter in "{value}" (write [addr]:port)')
        port = rest[1:] if rest else None
    elif ":/" in value or (value.count(":") > 1 and value.partition(":")[0].lower() in URL_SCHEMES):
        # http:/host:port or http:host:port: a URL with a slash missing, not an address.
        raise UsageError(f'malformed proxy URL "{redacted(value)}": write scheme://host:port, with two slashes')
    elif value.count(":") > 1:
        # nc splits "::1" into host ":" and port "1"; refuse instead of guessing.
        raise UsageError(f'ambiguous proxy address "{value}": write an IPv6 proxy as [addr] or [addr]:port')
    else:
        host, sep, port_text = value.partition(":")
        port = port_text if sep else None
    if not host:
        raise UsageError(f'missing proxy host in "{value}"')
    if port is None:
        port_number = HTTP_PROXY_PORT if protocol == "connect" else SOCKS_PORT
    elif port == "":
        raise UsageError(f'missing proxy port after ":" in "{value}"')
    else:
        port_number = parse_port(port, "proxy port")
    return Proxy(host, port_number, protocol)


def parse_proxy_url(value: str) -> Proxy:
    """scheme://[user[:password]@]host[:port][/]; default ports 3128 for http (as nc, not curl's
    1080), 443 for https, 1080 for SOCKS. User and password are percent-decoded."""
    from urllib.parse import unquote, urlsplit

    shown = redacted(value)
    if any(c in credentials(value) for c in "/?#"):
        # urlsplit would end the user and password there, and read the rest of them as a port or path.
        raise UsageError(f"invalid proxy URL {shown}: write a / ? or # in the user or password as %2F %3F %23")
    try:
        url = urlsplit(value)
        port = url.port
    except ValueError as e:
        raise UsageError(f"invalid proxy URL {shown}: {library_message(str(e), value)}") from None
    scheme = url.scheme.lower()
    if scheme not in URL_SCHEMES:
        raise UsageError(f"unsupported proxy URL scheme {scheme!r} in {shown} (use {', '.join(URL_SCHEMES)})")
    if url.path not in ("", "/") or url.query or url.fragment:
        raise UsageError(f"a proxy URL has no path or query: {shown}")
    if not url.hostname:
        raise UsageError(f"missing proxy host in {shown}")
    protocol, tls, remote_dns = URL_SCHEMES[scheme]
    if port is None:
        port = HTTPS_PROXY_PORT if tls else HTTP_PROXY_PORT if protocol == "connect" else SOCKS_PORT
    elif port == 0:
        raise UsageError(f"proxy port too small: 0 in {shown}")
    user = unquote(url.username) if url.username else None
    password = unquote(url.password) if url.password is not None else None
    return Proxy(url.hostname, port, protocol, tls=tls, remote_dns=remote_dns, user=user, password=password)


def check_chain(proxies: list[Proxy]) -> None:
    """Hops after an HTTPS proxy run inside its TLS session, where only HTTP CONNECT is spoken
    here: TLS inside TLS, and PySocks on a TLS stream, are not."""
    from itertools import pairwise

    for before, after in pairwise(proxies):
        if before.tls and (after.tls or after.protocol != "connect"):
            raise UsageError(f"after an HTTPS proxy, a chain can only go on through http:// proxies, not {after}")
