"""HTTP CONNECT as a protocol, no I/O: build the request, find where a reply's header block ends,
and judge the reply with h11.

The I/O layer (ncfd.tunnel.http_tunnel) reads exactly one header block at a time, letting HeaderBlock
decide how much of what it peeked to consume, so that not a byte past the reply leaves the kernel:
whatever follows belongs to ssh.
"""

from __future__ import annotations

import re

import h11

from ncfd.errors import DeadProxy, ProxyError, UsageError
from ncfd.render import host_port, printable
from ncfd.version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# h11's own end-of-headers rule (h11/_receivebuffer.py): a blank line, CRLF or bare LF.
_BLOCK_END = re.compile(rb"\n\r?\n")
# RFC 9112 authority-form: no whitespace, no brackets inside a host (we add them for IPv6).
_BAD_HOST = re.compile(r"[\s\[\]/@?#\x00-\x1f\x7f]")

# h11 quotes offending lines as bytearray(b'...'): keep the b'...' part.
_BYTEARRAY = re.compile(r"bytearray\((b'.*?')\)")

MAX_HEADER_BLOCK = 64 * 1024
MAX_LINE = 8 * 1024
MAX_HEADERS = 100


def authority(host: str, port: int) -> str:
    """host:port for the request line, brackets around an IPv6 literal, refusing what could
    smuggle a header or a second request."""
    if not host or _BAD_HOST.search(host):
        raise UsageError(f"invalid destination for HTTP CONNECT: {host!r}")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UsageError(f"invalid destination for HTTP CONNECT: {host!r}") from None
    return host_port(host, port)


class HeaderBlock:
    """One reply header block, taken from peeked bytes without a byte past its blank line.

    The I/O layer peeks at what is waiting, calls take(), receives exactly the count it returns,
    and repeats until done. Limits keep memory small whatever the proxy sends.
    """

    def __init__(self, proxy_name: str, socks_fix: str = "") -> None:
        self.proxy_name = proxy_name
        # What to do if the proxy is a SOCKS server (-X 5 on the command line), if anything.
        self.socks_fix = socks_fix
        self.data = b""
        self.done = False

    def take(self, peeked: bytes) -> int:
        """How many of the peeked bytes belong to the block (all of them until its end shows)."""
        # The blank line may straddle two reads: rescan the last two bytes already held.
        match = _BLOCK_END.search(self.data + peeked, max(0, len(self.data) - 2))
        count = len(peeked) if match is None else match.end() - len(self.data)
        self.data += peeked[:count]
        self.done = match is not None
        self._check()
        return count

    def _check(self) -> None:
        if not b"HTTP/".startswith(self.data[:5]):
            # 05 ff: SOCKS5's "no acceptable method" (microsocks); 00 5b: SOCKS4's "rejected".
            if self.data[:1] == b"\x05" or self.data[:2] in (b"\x00\x5a", b"\x00\x5b", b"\x00\x5c", b"\x00\x5d"):
                fix = self.socks_fix or "it is not an HTTP proxy"
                raise ProxyError(f"{self.proxy_name} answered like a SOCKS server ({self.data[:16].hex(' ')}): {fix}")
            raise self._error("did not answer like an HTTP proxy")
        lines = self.data.split(b"\n")
        if max(len(line) for line in lines) > MAX_LINE:
            raise self._error(f"sent a line longer than {MAX_LINE} bytes")
        if len(lines) - 1 > MAX_HEADERS + 2:  # line ends: the status line's, the headers', the blank line's
            raise self._error(f"sent more than {MAX_HEADERS} header lines")
        if len(self.data) > MAX_HEADER_BLOCK:
            raise self._error(f"sent more than {MAX_HEADER_BLOCK} bytes of headers")

    def closed_error(self) -> ProxyError:
        if not self.data:
            # As dante does: a SOCKS server given an HTTP request line closes without a word.
            socks = f", as a SOCKS server does when sent an HTTP request: {self.socks_fix}" if self.socks_fix else ""
            return DeadProxy(f"{self.proxy_name} closed the connection without answering{socks}")
        return self._error("closed the connection in the middle of its reply")

    def _error(self, what: str) -> ProxyError:
        return ProxyError(f'{self.proxy_name} {what}: "{first_line(self.data)}"')


def first_line(block: bytes) -> str:
    """The status line as the user should see it: CRs dropped, unprintables escaped, bounded."""
    line = block.split(b"\n", 1)[0].replace(b"\r", b"")
    return printable(line.decode("ascii", "backslashreplace"), 200)


class Reply:
    __slots__ = ("headers", "line", "reusable", "status")

    def __init__(self, status: int, line: str, headers: list[tuple[bytes, bytes]], reusable: bool) -> None:
        self.status = status
        self.line = line
        self.headers = headers
        # The connection can carry another request once this reply's body is read.
        self.reusable = reusable

    def values(self, name: bytes) -> list[str]:
        return [v.decode("latin-1") for n, v in self.headers if n == name]


MAX_REFUSAL_BODY = 1024 * 1024


class ConnectExchange:
    """One CONNECT request and its reply, driven by h11."""

    def __init__(
        self,
        host: str,
        port: int,
        proxy_name: str,
        headers: list[tuple[str, str]] | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ):
        """headers: ncfd's own (Proxy-Authorization); extra: the caller's, checked already
        (ncfd.proxy_headers), a User-Agent among them replacing ncfd's."""
        self.target = authority(host, port)
        self.proxy_name = proxy_name
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BLOCK)
        self._body = 0
        if not any(n.lower() == "user-agent" for n, _ in extra):
            extra = [("User-Agent", f"ncfd/{__version__}"), *extra]
        # As bytes, values in UTF-8: HTTP's obs-text, which h11 sends as given (a str it takes as ASCII only).
        fields = [(n.encode(), v.encode()) for n, v in [("Host", self.target), *extra, *(headers or [])]]
        try:
            self.request = self._conn.send(h11.Request(method="CONNECT", target=self.target, headers=fields))
        except h11.LocalProtocolError as e:
            raise UsageError(f"invalid destination for HTTP CONNECT: {self.target!r} ({e})") from None
        self._conn.send(h11.EndOfMessage())

    def feed(self, block: bytes) -> Reply | None:
        """Judge one complete header block: None for a 1xx (another block follows), the final
        Reply otherwise. A reply that is not HTTP raises ProxyError quoting its first line."""
        self._conn.receive_data(block)
        try:
            event = self._conn.next_event()
        except h11.RemoteProtocolError as e:
            detail = _BYTEARRAY.sub(r"\1", str(e))
            raise ProxyError(
                f'{self.proxy_name} sent a malformed HTTP reply ({detail}): "{first_line(block)}"'
            ) from None
        if isinstance(event, h11.InformationalResponse):
            return None
        if not isinstance(event, h11.Response):
            raise ProxyError(f'{self.proxy_name} sent an incomplete HTTP reply: "{first_line(block)}"')
        headers = list(event.headers)
        tokens = b",".join(v.lower() for n, v in headers if n in (b"connection", b"proxy-connection"))
        # Only a body whose end we can see lets the connection go on (a 407 for NTLM must).
        framed = any(n == b"content-length" or (n == b"transfer-encoding" and b"chunked" in v.lower())
                     for n, v in headers)  # fmt: skip
        reusable = event.http_version == b"1.1" and b"close" not in tokens and framed
        return Reply(event.status_code, first_line(block), headers, reusable)

    def feed_body(self, data: bytes | None) -> bool:
        """Feed bytes of a refusal's body (nothing of the tunnel can follow it: the proxy waits for
        our next request), b"" at the end of the stream, None to look at what came with the
        headers (an empty body needs nothing more); True once the body is complete."""
        if data is not None:
            self._body += len(data)
            if self._body > MAX_REFUSAL_BODY:
                raise ProxyError(f"{self.proxy_name} sent a reply body of more than {MAX_REFUSAL_BODY} bytes")
            self._conn.receive_data(data)
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as e:
                raise ProxyError(f"{self.proxy_name} sent a malformed reply body ({e})") from None
            if event is h11.NEED_DATA:
                if data == b"":
                    raise ProxyError(f"{self.proxy_name} closed the connection in the middle of a reply body")
                return False
            if isinstance(event, h11.EndOfMessage):
                return True
