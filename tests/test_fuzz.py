"""Property-based tests of reply handling: random, truncated and arbitrarily split replies never
cause a traceback, a hang, or a byte consumed past a valid reply."""

from __future__ import annotations

import itertools
import re
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncfd.deadline import Deadline
from ncfd.errors import NcfdError, ProxyError
from ncfd.http_connect import ConnectExchange, HeaderBlock
from ncfd.proxies import Proxy
from ncfd.socks_proxy import SocksRequest

PROXY = "HTTP proxy p:3128"

token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
value = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ;=/.", max_size=30).map(str.strip)
headers = st.lists(st.tuples(token, value), max_size=8)
eol = st.sampled_from(["\r\n", "\n"])


@st.composite
def valid_replies(draw: st.DrawFn) -> tuple[bytes, int]:
    """A CONNECT success as proxies write it: optional 1xx first, any 2xx, HTTP/1.0 or 1.1."""
    nl = draw(eol)
    blocks = []
    if draw(st.booleans()):
        blocks.append(f"HTTP/1.1 100 Continue{nl}{nl}")
    status = draw(st.integers(200, 299))
    version = draw(st.sampled_from(["1.0", "1.1"]))
    reason = draw(st.sampled_from(["", " OK", " Connection established"]))
    fields = "".join(f"{k}: {v}{nl}" for k, v in draw(headers))
    blocks.append(f"HTTP/{version} {status}{reason}{nl}{fields}{nl}")
    return "".join(blocks).encode(), status


def splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def drive(data: bytes, cuts: list[int]) -> tuple[int, int | None]:
    """What the I/O layer does, with peeks that see data arriving in the given pieces: returns the
    bytes consumed and the final status (None if the reply never completed)."""
    exchange = ConnectExchange("example.com", 22, PROXY)
    pieces = splits(data, cuts)
    consumed = 0
    arrived = 0
    while True:
        block = HeaderBlock(PROXY)
        while not block.done:
            while arrived <= consumed and pieces:  # nothing new waiting: the next segment arrives
                arrived += len(pieces.pop(0))
            if arrived <= consumed:
                return consumed, None
            consumed += block.take(data[consumed:arrived][:4096])
        reply = exchange.feed(block.data)
        if reply is not None:
            return consumed, reply.status


@settings(max_examples=400)
@given(valid_replies(), st.binary(max_size=64), st.lists(st.integers(0, 10_000), max_size=12))
def test_valid_reply_split_anywhere_consumes_exactly_the_reply(
    reply: tuple[bytes, int], trailing: bytes, cuts: list[int]
) -> None:
    data, status = reply
    consumed, got = drive(data + trailing, cuts)
    assert (consumed, got) == (len(data), status)


@settings(max_examples=400)
@given(st.binary(max_size=300), st.lists(st.integers(0, 10_000), max_size=12))
def test_garbage_only_ever_raises_proxy_error(data: bytes, cuts: list[int]) -> None:
    """Garbage is refused, or it was a reply after all: then exactly its header blocks were
    consumed, ending at a blank line; or it is the start of one: then it was all taken in."""
    try:
        consumed, status = drive(data, cuts)
    except ProxyError:
        return
    if status is None:
        assert consumed == len(data)
    else:
        assert status >= 200
        assert data.startswith(b"HTTP/")
        assert re.search(rb"\n\r?\n\Z", data[:consumed])


@settings(max_examples=300)
@given(valid_replies(), st.integers(0, 400))
def test_truncated_reply_never_completes(reply: tuple[bytes, int], cut: int) -> None:
    data, _ = reply
    truncated = data[: cut % len(data)]
    try:
        _, status = drive(truncated, [])
    except ProxyError:
        return
    assert status is None or truncated.count(b"HTTP/") > 1  # only a complete 1xx block may precede


# --- SOCKS through PySocks, on a real socket pair -------------------------------------------

socks5_ok = st.builds(
    lambda atyp_addr, port: b"\x05\x00" + b"\x05\x00\x00" + atyp_addr + port,
    st.one_of(
        st.binary(min_size=4, max_size=4).map(lambda a: b"\x01" + a),
        st.binary(min_size=16, max_size=16).map(lambda a: b"\x04" + a),
        st.binary(min_size=1, max_size=40).map(lambda n: b"\x03" + bytes([len(n)]) + n),
    ),
    st.binary(min_size=2, max_size=2),
)
socks4_ok = st.binary(min_size=6, max_size=6).map(lambda rest: b"\x00\x5a" + rest)


def negotiate_against(protocol: str, proxy_bytes: bytes) -> tuple[socket.socket | None, socket.socket]:
    """Run ncfd's SOCKS handshake against a peer that has already written proxy_bytes and closed
    its sending side (so a short reply ends in EOF, not a hang)."""
    ours, peer = socket.socketpair()
    peer.sendall(proxy_bytes)
    peer.shutdown(socket.SHUT_WR)
    # SOCKS4 resolves names locally: give it an address, so no DNS query is made.
    target = "192.0.2.1" if protocol == "4" else "example.com"
    request = SocksRequest(Proxy("127.0.0.1", 1080, protocol), target, 22)
    try:
        return request.negotiate(ours, Deadline(5)), peer
    except NcfdError:
        return None, peer


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["5", "4a"]), st.data(), st.binary(max_size=64))
def test_socks_valid_reply_leaves_the_rest_in_the_socket(protocol: str, data: st.DataObject, trailing: bytes) -> None:
    reply = data.draw(socks5_ok if protocol == "5" else socks4_ok)
    sock, peer = negotiate_against(protocol, reply + trailing)
    assert sock is not None
    sock.settimeout(5)
    rest = b""
    while chunk := sock.recv(4096):
        rest += chunk
    assert rest == trailing
    sock.close()
    peer.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["5", "4", "4a"]), st.binary(max_size=80))
def test_socks_garbage_only_ever_raises_ncfd_errors(protocol: str, garbage: bytes) -> None:
    sock, peer = negotiate_against(protocol, garbage)
    if sock is not None:
        sock.close()
    peer.close()
