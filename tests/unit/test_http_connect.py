"""HTTP CONNECT as a protocol, byte by byte: the request on the wire and how replies are judged."""

from __future__ import annotations

import pytest

from ncfd import __version__
from ncfd.errors import ProxyError, UsageError
from ncfd.tunnel.http_connect import ConnectExchange, HeaderBlock, authority


def exchange(host: str = "example.com", port: int = 22) -> ConnectExchange:
    return ConnectExchange(host, port, "HTTP proxy p:3128")


def test_request_is_http11_with_host_header() -> None:
    assert exchange().request == (
        b"CONNECT example.com:22 HTTP/1.1\r\nHost: example.com:22\r\nUser-Agent: ncfd/%s\r\n\r\n" % __version__.encode()
    )


@pytest.mark.parametrize(
    ("host", "expected"),
    [("2001:db8::1", "[2001:db8::1]:22"), ("fe80::1%lo", "[fe80::1%lo]:22"), ("10.0.0.1", "10.0.0.1:22")],
)
def test_ipv6_literals_are_bracketed(host: str, expected: str) -> None:
    assert authority(host, 22) == expected
    assert exchange(host).request.startswith(f"CONNECT {expected} HTTP/1.1\r\nHost: {expected}\r\n".encode())


@pytest.mark.parametrize(
    "host", ["a\r\nX-Evil: 1", "a\nb", "a b", "a\tb", "[::1]", "a]", "", "a\x00b", "user@host", "a/b"]
)
def test_hosts_that_could_smuggle_are_refused_before_sending(host: str) -> None:
    with pytest.raises(UsageError, match="invalid destination"):
        exchange(host)


def test_internationalised_names_are_sent_as_idna() -> None:
    assert authority("bücher.example", 22) == "xn--bcher-kva.example:22"


@pytest.mark.parametrize(
    "block",
    [
        b"HTTP/1.1 200 Connection established\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\n",
        b"HTTP/1.1 200\r\n\r\n",
        b"HTTP/1.1 200 OK\nProxy-agent: x\n\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
def test_any_2xx_opens_the_tunnel(block: bytes) -> None:
    reply = exchange().feed(block)
    assert reply is not None and 200 <= reply.status < 300


def test_1xx_is_skipped_and_the_next_block_decides() -> None:
    e = exchange()
    assert e.feed(b"HTTP/1.1 100 Continue\r\n\r\n") is None
    reply = e.feed(b"HTTP/1.1 200 OK\r\n\r\n")
    assert reply is not None and reply.status == 200


@pytest.mark.parametrize(
    ("block", "status", "line"),
    [
        (b"HTTP/1.1 403 Forbidden\r\n\r\n", 403, "HTTP/1.1 403 Forbidden"),
        (b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n", 407, "HTTP/1.0 407 Proxy Authentication Required"),
        (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", 502, "HTTP/1.1 502 Bad Gateway"),
    ],
)
def test_refusals_carry_status_and_line(block: bytes, status: int, line: str) -> None:
    reply = exchange().feed(block)
    assert reply is not None and (reply.status, reply.line) == (status, line)


def test_malformed_reply_is_a_proxy_error_quoting_the_first_line() -> None:
    with pytest.raises(ProxyError, match=r'malformed HTTP reply .*"HTTP/1.1 200 OK"'):
        exchange().feed(b"HTTP/1.1 200 OK\r\nProxy-agent : x\r\n\r\n")


def take_all(data: bytes, chunk: int = 4096) -> tuple[HeaderBlock, int]:
    """Feed data as successive peeks of at most chunk bytes; return the block and bytes consumed."""
    block = HeaderBlock("HTTP proxy p:3128")
    consumed = 0
    while not block.done and consumed < len(data):
        consumed += block.take(data[consumed : consumed + chunk])
    return block, consumed


@pytest.mark.parametrize(
    ("data", "end"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\nSSH-2.0-x\r\n", 19),
        (b"HTTP/1.1 200 OK\n\nSSH", 17),
        (b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n\r\n", 25),
    ],
)
def test_header_block_takes_exactly_up_to_the_blank_line(data: bytes, end: int) -> None:
    for chunk in (1, 2, 3, 4096):
        block, consumed = take_all(data, chunk)
        assert block.done and consumed == end and block.data == data[:end]


def test_header_block_incomplete_takes_everything_peeked() -> None:
    block, consumed = take_all(b"HTTP/1.1 200 OK\r\nA: b\r\n")
    assert not block.done and consumed == 23


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n", 'did not answer like an HTTP proxy: "SSH-2.0-OpenSSH_9.2"'),
        (b"\x05\x00", r"answered like a SOCKS server \(05 00\): it is not an HTTP proxy"),
        (b"HTTP/1.1 200 " + b"x" * 9000, "sent a line longer than 8192 bytes"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "sent more than 100 header lines"),
        (b"HTTP/1.1 200 OK\r\n" + (b"X: " + b"y" * 7000 + b"\r\n") * 10, "more than 65536 bytes of headers"),
    ],
    ids=["ssh-banner", "socks-reply", "long-line", "101-headers", "70k-headers"],
)
def test_header_block_limits_and_garbage(data: bytes, message: str) -> None:
    with pytest.raises(ProxyError, match=message):
        take_all(data)


def test_header_block_allows_100_headers() -> None:
    block, _ = take_all(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 100 + b"\r\n")
    assert block.done
