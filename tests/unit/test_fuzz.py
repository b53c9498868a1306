"""Property-based tests of what proxies and PAC servers hand us: random, truncated and arbitrarily
split replies never cause a traceback, a hang, or a byte consumed past a valid reply; challenges,
authentication tokens, PAC files of any bytes, PAC answers and cache headers end in an answer or an
NcfdError, never another exception."""

from __future__ import annotations

import base64
import contextlib
import itertools
import re
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncfd.deadline import Deadline
from ncfd.errors import NcfdError, PacError, ProxyError
from ncfd.proxies import Proxy
from ncfd.route.pac_engine import Engine, parse_answer
from ncfd.route.pac_fetch import MAX_LIFETIME, _lifetime, decode
from ncfd.tunnel.http_connect import ConnectExchange, HeaderBlock
from ncfd.tunnel.proxy_auth import Challenge, authenticator, choose_scheme, parse_challenges
from ncfd.tunnel.socks import SocksRequest

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


SOCKS_DEADLINE = 5.0


def negotiate_against(protocol: str, proxy_bytes: bytes) -> tuple[socket.socket | ProxyError, socket.socket, float]:
    """Run ncfd's SOCKS handshake against a peer that has already written proxy_bytes and closed
    its sending side (so a short reply ends in EOF, not a hang): the tunnel or the ProxyError, the
    peer, and the seconds it took. Any other error (a time-out) fails the test."""
    ours, peer = socket.socketpair()
    peer.sendall(proxy_bytes)
    peer.shutdown(socket.SHUT_WR)
    # SOCKS4 resolves names locally: give it an address, so no DNS query is made.
    target = "192.0.2.1" if protocol == "4" else "example.com"
    request = SocksRequest(Proxy("127.0.0.1", 1080, protocol), target, 22)
    started = time.monotonic()
    try:
        result: socket.socket | ProxyError = request.negotiate(ours, Deadline(SOCKS_DEADLINE))
    except ProxyError as e:
        result = e
    return result, peer, time.monotonic() - started


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["5", "4a"]), st.data(), st.binary(max_size=64))
def test_socks_valid_reply_leaves_the_rest_in_the_socket(protocol: str, data: st.DataObject, trailing: bytes) -> None:
    reply = data.draw(socks5_ok if protocol == "5" else socks4_ok)
    sock, peer, _ = negotiate_against(protocol, reply + trailing)
    assert isinstance(sock, socket.socket), sock
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
    """Whatever the proxy sent before closing, the end of it is news at once: a ProxyError (or,
    by chance, a valid reply), never the deadline waited out."""
    result, peer, elapsed = negotiate_against(protocol, garbage)
    peer.close()
    if isinstance(result, socket.socket):
        result.close()
    else:
        assert "proxy 127.0.0.1:1080" in str(result) and "\n" not in str(result)  # one line naming the proxy
    assert elapsed < SOCKS_DEADLINE / 2


# --- what proxies and PAC servers hand us to parse: only NcfdErrors come out ----------------------
# (3,000 random NTLM challenges once escaped as 335 struct.errors and ~700 KeyErrors.)

header_text = st.text(st.characters(max_codepoint=255), max_size=120)  # header values decode as Latin-1
schemes = st.sampled_from(["Basic", "Digest", "NTLM", "Negotiate", "Bearer", "ntlm", "negotiate", "digest"])
base64_ish = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-._~", max_size=60)
# An NTLM CHALLENGE message's signature and type, then anything: what gets past the first checks.
ntlm_challenges = st.one_of(
    st.binary(max_size=80),
    st.binary(max_size=200).map(lambda rest: b"NTLMSSP\x00\x02\x00\x00\x00" + rest),
).map(lambda raw: base64.b64encode(raw).decode())
challenge_values = st.lists(
    st.one_of(header_text, st.builds(lambda s, t: f"{s} {t}", schemes, st.one_of(base64_ish, header_text))),
    max_size=4,
)


@settings(max_examples=500)
@given(challenge_values, st.sampled_from([None, "basic", "digest", "ntlm", "negotiate"]), st.booleans())
def test_any_proxy_authenticate_header_parses_and_chooses_or_raises_an_ncfd_error(
    values: list[str], forced: str | None, user: bool
) -> None:
    challenges = parse_challenges(values)
    assert all(isinstance(c, Challenge) for c in challenges)
    with contextlib.suppress(NcfdError):
        choose_scheme(challenges, forced, PROXY, user)


digest_values = st.sampled_from(["MD5", "md5-sess", "SHA-256", "SHA-256-sess", "auth", "auth,auth-int", "true"])
digest_params = st.dictionaries(
    st.sampled_from(["realm", "nonce", "qop", "algorithm", "opaque", "stale", "domain", "charset"]),
    st.one_of(header_text, digest_values),
)


@settings(max_examples=300)
@given(st.lists(st.builds(Challenge, st.just("digest"), digest_params, st.none()), min_size=1, max_size=3))
def test_digest_answers_any_challenge_or_raises_an_ncfd_error(challenges: list[Challenge]) -> None:
    auth = authenticator("digest", "alice", lambda: "s3cret", "example.com:22", "p")
    for _ in range(2):  # a second challenge too: stale nonces, or a refusal
        with contextlib.suppress(NcfdError):
            answer = auth.respond(challenges)
            assert answer is None or answer.startswith("Digest ")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["ntlm", "ntlm-in-negotiate"]), st.lists(st.one_of(ntlm_challenges, base64_ish), max_size=2))
def test_ntlm_answers_any_challenge_token_or_raises_an_ncfd_error(scheme: str, tokens: list[str]) -> None:
    auth = authenticator(scheme, "alice", lambda: "s3cret", "example.com:22", "p")
    assert auth.respond([]) is not None  # the NEGOTIATE message, before any token
    name = "ntlm" if scheme == "ntlm" else "negotiate"
    for token in tokens:
        try:
            auth.respond([Challenge(name, {}, token)])
        except NcfdError:
            return


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode()), base64_ish),
                min_size=1, max_size=2))  # fmt: skip
def test_a_negotiate_token_of_any_kind_is_refused_with_an_ncfd_error(tokens: list[str]) -> None:
    """Without a ticket (no credential cache), as the proxy's later legs and as its final token."""
    from ncfd.tunnel.proxy_auth import Kerberos

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KRB5CCNAME", "FILE:/nonexistent/ncfd-fuzz-ccache")
        auth = Kerberos("HTTP@proxy.example")
        for token in tokens:
            with contextlib.suppress(NcfdError):
                auth.respond([Challenge("negotiate", {}, token)])
            auth.legs = 1  # as if our first token had gone out
            with contextlib.suppress(NcfdError):
                auth.finish([Challenge("negotiate", {}, token)])


RETURNS_DIRECT = 'function FindProxyForURL(u, h) { return "DIRECT"; }\n'
pac_bytes = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: (RETURNS_DIRECT + t).encode()),
    st.text(max_size=100).map(lambda t: (RETURNS_DIRECT + t).encode("utf-16-le")),  # no BOM
    st.builds(lambda a, b: (a + "\x00" + b).encode(), st.text(max_size=50), st.just(RETURNS_DIRECT)),
)
# Real charsets, codecs that are no charset (idna, base64), and names Python does not know.
charsets = st.sampled_from(["", "text/plain", "application/x-ns-proxy-autoconfig"]) | st.sampled_from(
    ["utf-8", "utf-16", "idna", "undefined", "punycode", "unicode_escape", "base64", "utf-7", "nope"]
).map("text/plain; charset={}".format)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pac_bytes, charsets)
def test_a_pac_of_any_bytes_is_evaluated_or_refused_with_a_pac_error(data: bytes, content_type: str) -> None:
    text = decode(data, content_type)
    assert isinstance(text, str)
    try:
        engine = Engine(text, "fuzz.pac", 1.0)
        found = engine.find("https://h:22/", "h", lambda name: [], ["192.0.2.1"], 0.0)
    except PacError:
        return
    parse_answer(found.answer)


pac_words = st.sampled_from(["PROXY", "https", "SOCKS5", "SOCKS", "DIRECT", "QUIC", "", " ", ";", ":", "[", "]", "a",
                             "p.example", "1", "80", "65536", "\u00b2", "\u0663", "\x00", "::1", "%eth0"])  # fmt: skip
digits = st.text(alphabet='0123456789\u00b2\u0663\uff11"x', max_size=6)  # ASCII, and what else isdigit()
pac_hosts = st.sampled_from(["p.example", "[::1]", "[fe80::1%eth0]", "[:\x00]", "[::\u0663]", "[::1", "[]", "[:]"])
pac_answers = st.one_of(
    st.text(max_size=200),
    st.lists(st.lists(pac_words, max_size=8).map("".join), max_size=6).map("; ".join),
    st.lists(st.builds(lambda k, h, p: f"{k} {h}:{p}", st.sampled_from(["PROXY", "HTTPS", "SOCKS5", "SOCKS"]),
                       st.text(max_size=12) | pac_hosts, digits), max_size=4).map("; ".join),
)  # fmt: skip


@settings(max_examples=500)
@given(pac_answers)
def test_any_pac_answer_parses_into_entries_a_proxy_can_be_made_of(answer: str) -> None:
    from ncfd.route.choice import _hops

    entries, _ = parse_answer(answer)
    for entry in entries:
        assert entry.keyword == "direct" or (entry.host.isascii() and "\x00" not in entry.host)
        assert 0 <= entry.port < 65536
        _hops(entry)


@settings(max_examples=300)
@given(st.lists(st.one_of(header_text, st.builds("{}={}".format, st.sampled_from(["max-age", "s-maxage", "no-cache"]),
                                                 digits))).map(", ".join))  # fmt: skip
def test_any_cache_control_of_a_pac_server_gives_a_lifetime(cache_control: str) -> None:
    assert 0 <= _lifetime({"cache-control": cache_control}) <= MAX_LIFETIME


pac_server_heads = st.sampled_from([
    b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK\r\nContent-Length: 5", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked",
    b"HTTP/1.0 302 Found\r\nLocation: x", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=idna",
])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.builds(lambda head, body: head + b"\r\n\r\n" + body, pac_server_heads,
                                           st.binary(max_size=100)))  # fmt: skip
def test_any_pac_server_response_is_read_or_refused_with_an_ncfd_error(response: bytes) -> None:
    import h11

    from ncfd.route.pac_fetch import _response

    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/proxy.pac", headers=[("Host", "pac")]))
    conn.send(h11.EndOfMessage())
    ours, server = socket.socketpair()
    with ours, server:
        server.sendall(response)
        server.shutdown(socket.SHUT_WR)
        try:
            _, headers, body = _response(conn, ours, Deadline(5), "http://pac/proxy.pac")
        except NcfdError:
            return
        decode(body, headers.get("content-type", ""))
        _lifetime(headers)
