"""Where a PAC file comes from: an http:// or https:// URL, fetched directly (never through a proxy,
as browsers fetch theirs), revalidated as HTTP says and kept in ncfd.route.cache; a file:// URL or a path.

With a fresh copy in the cache nothing is fetched at all. A stale copy is revalidated (ETag,
Last-Modified); when the server cannot be reached, or fails (5xx), the stale copy is used with a
warning. Fetches are bounded: MAX_SIZE, MAX_REDIRECTS, and at most FETCH_LIMIT seconds (and half of
what is left of the deadline, so that a proxy can still be reached after a slow server). Any
Content-Type is accepted; the text is decoded as the charset parameter says, else by BOM, else as
UTF-8, else as Latin-1: PAC files in the wild come in all of them.
"""

from __future__ import annotations

import socket
import time

from ncfd.errors import NcfdError, PacError, Refused, ResolveError, UsageError
from ncfd.render import credentials, host_port, library_message, printable, redacted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.deadline import Deadline
    from ncfd.log import Log
    from ncfd.route.cache import PacCopy

MAX_SIZE = 2 << 20
MAX_REDIRECTS = 5
FETCH_LIMIT = 10.0
DEFAULT_LIFETIME = 600.0  # seconds a copy is fresh when the server says nothing (Cache-Control)
MAX_LIFETIME = 86400.0
_REDIRECTS = (301, 302, 303, 307, 308)


class Unreachable(PacError):
    """The PAC server's name does not resolve or it refuses the connection, and no copy of its PAC
    is cached: what a PAC server of a network we are not on looks like (--proxy-pac-optional)."""


class Pac:
    """A PAC file's text and where it came from, for messages and --show-route."""

    __slots__ = ("how", "location", "text")

    def __init__(self, location: str, text: str, how: str) -> None:
        self.location, self.text, self.how = location, text, how


def load(
    location: str, deadline: Deadline, cacert: str | None, log: Log, warn: Log, *, trust_cache: bool = True
) -> Pac:
    """The PAC at location (a URL or a path), as fresh as HTTP and the cache allow. Without
    trust_cache, the server must answer: no fresh copy is taken as it is, no stale one in its stead."""
    scheme = location.partition("://")[0].lower() if "://" in location else ""
    shown = redacted(location)
    if scheme in ("http", "https") and credentials(location):
        # Refused rather than sent: they would go in the clear to plain http:// servers and on to
        # where those redirect, and the cache would keep them (its files are named by their URL).
        raise UsageError(
            f"PAC {shown}: ncfd sends no user or password to a PAC server (an @ in a path is written %40);"
            " fetch the file with them yourself and give ncfd its path"
        )
    if scheme in ("http", "https"):
        return _load_url(location, deadline, cacert, log, warn, trust_cache)
    if scheme == "file":
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(location)
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"a file:// PAC location names no host: {shown}")
        return Pac(location, _read_file(unquote(parts.path), shown), "read from the file")
    if scheme:
        raise UsageError(f"unsupported PAC location '{shown}' (use http://, https://, file:// or a path)")
    return Pac(location, _read_file(location, shown), "read from the file")


def _read_file(path: str, location: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SIZE + 1)
    except OSError as e:
        # Exit 9 as for a PAC server that cannot be reached: either way the PAC cannot be had.
        raise PacError(f"cannot read PAC file {location}: {e.strerror}{_url_meant(path, e)}") from None
    if len(data) > MAX_SIZE:
        raise PacError(f"PAC {location} is larger than {MAX_SIZE >> 20} MiB")
    return decode(data, "")


def _url_meant(path: str, e: OSError) -> str:
    """The hint for a path that is not there and starts like a server (pac.corp:8080/proxy.pac):
    the scheme was left out."""
    import errno
    import re

    first, slash, _ = path.partition("/")
    server = re.fullmatch(r"[\w-]+(\.[\w-]+)*(:\d+)?", first) and ("." in first or ":" in first)
    if e.errno == errno.ENOENT and slash and server:
        return f" (did you mean http://{printable(path)}?)"
    return ""


def _load_url(url: str, deadline: Deadline, cacert: str | None, log: Log, warn: Log, trust_cache: bool) -> Pac:
    from ncfd.deadline import Deadline
    from ncfd.route import cache

    name = redacted(url)
    copy = cache.load_pac(url, warn)
    if copy is not None:  # fresh no longer than we would have kept it, whoever wrote it
        copy.fresh_until = min(copy.fresh_until, copy.fetched + MAX_LIFETIME)
    if copy is not None and copy.fresh() and trust_cache:
        log(f"PAC {name}: cached copy, fresh for {copy.fresh_until - time.time():.0f} s more")
        return Pac(url, copy.text, "cached")
    bound = Deadline(min(deadline.remaining() / 2, FETCH_LIMIT), deadline)
    try:
        status, headers, body = _fetch(url, bound, cacert, log, copy)
    except NcfdError as e:
        if copy is None or not trust_cache:
            absent = isinstance(e, (ResolveError, Refused))
            raise (Unreachable if absent else PacError)(f"cannot fetch PAC {name}: {e}") from None
        warn(f"cannot fetch PAC {name} ({e}); using the copy fetched {_age(copy.fetched)} ago")
        return Pac(url, copy.text, "stale copy: the server could not be reached")
    if status >= 500 and copy is not None and trust_cache:
        warn(f'PAC {name}: the server answered "{status}"; using the copy fetched {_age(copy.fetched)} ago')
        return Pac(url, copy.text, "stale copy: the server failed")
    now = time.time()
    if status == 304 and copy is not None:
        copy.fetched, copy.fresh_until = now, now + _lifetime(headers)
        _store(copy, log)
        log(f"PAC {name}: not modified since the cached copy")
        return Pac(url, copy.text, "cached, revalidated")
    if status != 200:
        raise PacError(
            f'cannot fetch PAC {name}: the server answered "{status} {printable(headers.get("", ""))}"'.rstrip()
        )
    from ncfd.route.cache import PacCopy

    text = decode(body, headers.get("content-type", ""))
    lifetime = _lifetime(headers)
    fresh = PacCopy(url, text, now, now + lifetime, headers.get("etag", ""), headers.get("last-modified", ""))
    if "no-store" not in headers.get("cache-control", "").lower():
        _store(fresh, log)
    log(f"PAC {name}: fetched {len(body)} bytes, fresh for {lifetime:.0f} s")
    return Pac(url, text, "fetched")


def _store(copy: PacCopy, log: Log) -> None:
    from ncfd.route import cache

    try:
        cache.store_pac(copy)
    except OSError as e:
        log(f"cannot cache the PAC in {cache.directory()}: {e.strerror}")


def _age(when: float) -> str:
    seconds = max(0, int(time.time() - when))
    return f"{seconds // 3600} h" if seconds >= 7200 else f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"


def _lifetime(headers: dict[str, str]) -> float:
    directives = [d.strip().lower() for d in headers.get("cache-control", "").split(",")]
    if "no-cache" in directives or "no-store" in directives:
        return 0.0
    for directive in directives:
        name, _, value = directive.partition("=")
        if name == "max-age" and value.strip('"').isascii() and value.strip('"').isdigit():
            return min(float(value.strip('"')), MAX_LIFETIME)
    return DEFAULT_LIFETIME


def decode(body: bytes, content_type: str) -> str:
    import codecs

    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "charset":
            try:
                return body.decode(codecs.lookup(value.strip().strip('"')).name, errors="replace")
            except (LookupError, UnicodeError):
                break  # a charset Python does not know, or a codec that is no charset (idna): guess
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if body.startswith(bom):
            return body.decode(encoding, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


def _fetch(
    url: str, deadline: Deadline, cacert: str | None, log: Log, copy: PacCopy | None
) -> tuple[int, dict[str, str], bytes]:
    """GET url, following redirects: the final status, its headers (lowercase names; "" holds the
    reason phrase) and body."""
    from urllib.parse import urljoin

    seen = [url]
    for _ in range(MAX_REDIRECTS + 1):
        status, headers, body = _get(url, deadline, cacert, log, copy)
        if status not in _REDIRECTS or "location" not in headers:
            return status, headers, body
        try:
            target = urljoin(url, headers["location"])
        except ValueError:  # "http://[x/": urllib refuses it
            raise PacError(
                f"PAC {redacted(seen[0])}: redirected to an invalid URL: '{printable(headers['location'])}'"
            ) from None
        if target.partition("://")[0].lower() not in ("http", "https") or not (
            target.isascii() and target.isprintable()
        ):
            raise PacError(
                f"PAC {redacted(seen[0])}: redirected to {redacted(target)}, which is not an http:// or https:// URL"
            )
        if target in seen:
            raise PacError(f"PAC {redacted(seen[0])}: redirected in a loop (back to {redacted(target)})")
        log(f"PAC {redacted(url)}: redirected to {redacted(target)}")
        seen.append(target)
        url = target
    raise PacError(f"PAC {redacted(seen[0])}: more than {MAX_REDIRECTS} redirects")


def _get(
    url: str, deadline: Deadline, cacert: str | None, log: Log, copy: PacCopy | None
) -> tuple[int, dict[str, str], bytes]:
    from urllib.parse import urlsplit

    import h11

    from ncfd.net import dial
    from ncfd.request import SocketOptions
    from ncfd.version import __version__

    try:
        parts = urlsplit(url)
        https = parts.scheme.lower() == "https"
        port = parts.port or (443 if https else 80)
    except ValueError:
        raise UsageError(f"invalid PAC URL {redacted(url)}") from None
    host = parts.hostname
    if not host:
        raise UsageError(f"invalid PAC URL {redacted(url)}: no host")
    authority = host_port(host, parts.port)
    fields = [("Host", authority), ("User-Agent", f"ncfd/{__version__}"), ("Accept", "*/*"), ("Connection", "close")]
    if copy is not None and copy.etag:
        fields.append(("If-None-Match", copy.etag))
    if copy is not None and copy.last_modified:
        fields.append(("If-Modified-Since", copy.last_modified))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
    try:
        request = conn.send(h11.Request(method="GET", target=target, headers=fields)) + (
            conn.send(h11.EndOfMessage()) or b""
        )
    except h11.LocalProtocolError as e:
        raise UsageError(f"invalid PAC URL {redacted(url)}: {library_message(str(e), url)}") from None
    with deadline.step(f"connecting to the PAC server {authority}"):
        sock = dial.connect(host, port, SocketOptions(), deadline, log, "PAC server")
    try:
        with deadline.step(f"waiting for the PAC server {authority}",
                           lambda e: PacError(f"PAC server {authority}: {e.strerror or e}")):  # fmt: skip
            if https:
                from ncfd.net.tls import start_tls

                sock = start_tls(sock, host, f"PAC server {authority}", cacert, deadline, log)
            deadline.arm(sock)
            sock.sendall(request)
            return _response(conn, sock, deadline, url)
    finally:
        sock.close()


def _response(conn: object, sock: socket.socket, deadline: Deadline, url: str) -> tuple[int, dict[str, str], bytes]:
    import h11

    assert isinstance(conn, h11.Connection)
    status, headers, body = 0, {}, bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as e:
            raise PacError(
                f"PAC {redacted(url)}: the server sent a malformed HTTP response ({printable(str(e))})"
            ) from None
        if event is h11.NEED_DATA:
            deadline.arm(sock)
            conn.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
            headers = {n.decode("latin-1"): v.decode("latin-1") for n, v in event.headers}
            headers[""] = event.reason.decode("latin-1")
            if status in _REDIRECTS or status == 304 or status >= 400:
                return status, headers, b""  # no need for the body
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_SIZE:
                raise PacError(f"PAC {redacted(url)} is larger than {MAX_SIZE >> 20} MiB")
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return status, headers, bytes(body)
