"""Proxies that are broken, hostile or not proxies at all. Each must end in one clear line, a
non-zero exit and no descriptor passed, within the deadline."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from collections.abc import Callable

import pytest

from tests.support.fakeservers import FakeServer, Session
from tests.support.fdharness import NCFD, Handoff, run_fdpass

SSH_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
PROXY_AUTH_REQUIRED = b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="x"\r\n\r\n'
NEGOTIATE_NOT_BASE64 = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate abcde\r\n\r\n"
DEADLINE = 2
# Generous: a loaded CI machine may start Python slowly; a hang would take the harness's 30 s.
BOUND = DEADLINE + 8


def read_request(s: Session, protocol: str) -> None:
    """Consume the client's first message, whatever the protocol."""
    if protocol == "connect":
        s.recv_until(b"\r\n\r\n")
    elif protocol == "5":
        _, n = s.recv_exactly(2)
        s.recv_exactly(n)
    else:
        s.recv_exactly(8)
        s.recv_until(b"\x00")


Handler = Callable[[Session], None]


def reply_with(protocol: str, data: bytes, then: Handler = lambda s: None) -> Handler:
    def handle(s: Session) -> None:
        read_request(s, protocol)
        s.send(data)
        then(s)

    return handle


def stay_silent(s: Session) -> None:
    while s.conn.recv(65536):
        pass


def reset(s: Session) -> None:
    s.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.conn.close()


def socks5_after_greeting(reply: bytes, then: Handler = lambda s: None) -> Handler:
    """A SOCKS5 server that accepts "no auth", reads the request, then answers reply."""

    def handle(s: Session) -> None:
        read_request(s, "5")
        s.send(b"\x05\x00")
        s.recv_exactly(4 + 1)
        s.recv_exactly(s.received[-1] + 2)
        s.send(reply)
        then(s)

    return handle


def drip(s: Session) -> None:
    read_request(s, "connect")
    for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: y\r\n" * 1000:
        s.send(bytes([byte]))
        time.sleep(0.3)


def megabyte_of_headers(s: Session) -> None:
    read_request(s, "connect")
    s.send(b"HTTP/1.1 200 OK\r\n")
    s.send(b"X-Padding: " + b"y" * 60 + b"\r\n")
    s.send((b"X-Padding: " + b"y" * 60 + b"\r\n") * 14000)


CASES = [
    # name, -X, server, exit code, message
    ("silent-connect", "connect", stay_silent, 7, "timed out after 2s waiting for HTTP proxy"),
    ("silent-socks5", "5", stay_silent, 7, "timed out after 2s waiting for the SOCKS5 greeting's answer from"),
    ("silent-socks4", "4", stay_silent, 7, "timed out after 2s waiting for SOCKS4 proxy"),
    ("silent-socks4a", "4A", stay_silent, 7, "timed out after 2s waiting for SOCKS4A proxy"),
    ("ssh-banner-connect", "connect", reply_with("connect", SSH_BANNER), 5,
     'did not answer like an HTTP proxy: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"'),
    ("ssh-banner-socks5", "5", reply_with("5", SSH_BANNER), 5,
     'sent an invalid reply ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"): is it a SOCKS5 proxy?'),
    ("ssh-banner-socks4", "4", reply_with("4", SSH_BANNER), 5,
     'sent an invalid reply ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"): is it a SOCKS4 proxy?'),
    ("http-proxy-asked-socks5", "5", reply_with("5", b"HTTP/1.1 400 Bad Request\r\n\r\n"), 5,
     'answered like an HTTP proxy ("HTTP/1.1 400 Bad Request"): use -X connect (or an http:// URL)'),
    ("socks5-asked-connect", "connect", reply_with("connect", b"\x05\xff"), 5,
     "answered like a SOCKS server (05 ff): if it is one, use -X 5 (or a socks5h:// proxy URL)"),
    ("closes-connect", "connect", reply_with("connect", b""), 5, "closed the connection without answering"),
    ("closes-socks5", "5", reply_with("5", b""), 5, "closed the connection without answering"),
    ("closes-socks4", "4", reply_with("4", b""), 5, "closed the connection without answering"),
    ("resets-connect", "connect", reset, 5, "reset the connection during the handshake"),
    ("resets-socks5", "5", reset, 5, "reset the connection during the handshake"),
    ("half-socks5-reply", "5", socks5_after_greeting(b"\x05\x00\x00", stay_silent), 7,
     "to example.com:22; it had sent 05 00 05 00 00"),
    ("half-socks4-reply", "4", reply_with("4", b"\x00\x5a\x00", stay_silent), 7, "; it had sent 00 5a 00"),
    ("half-status-line", "connect", reply_with("connect", b"HTTP/1.1 20", stay_silent), 7,
     'to example.com:22; it had sent "HTTP/1.1 20"'),
    ("closes-mid-reply", "connect", reply_with("connect", b"HTTP/1.1 200 OK\r\nX: y\r\n"), 5,
     'closed the connection in the middle of its reply: "HTTP/1.1 200 OK"'),
    ("closes-mid-socks5-reply", "5", socks5_after_greeting(b"\x05\x00\x00\x01\x7f"), 5,
     "closed the connection in the middle of its reply (05 00 05 00 00 01 7f)"),
    ("megabyte-of-headers", "connect", megabyte_of_headers, 5, "sent more than 100 header lines"),
    ("64k-status-line", "connect", reply_with("connect", b"HTTP/1.1 200 " + b"x" * 65536, stay_silent), 5,
     "sent a line longer than 8192 bytes"),
    ("drip-feed", "connect", drip, 7, "timed out after 2s"),
    ("403", "connect", reply_with("connect", b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"), 5,
     'refused CONNECT example.com:22: "HTTP/1.1 403 Forbidden"'),
    ("407-without-credentials", "connect", reply_with("connect", PROXY_AUTH_REQUIRED), 6,
     '"HTTP/1.1 407 Proxy Authentication Required": it wants authentication (-P user)'),
    ("502-no-length", "connect", reply_with("connect", b"HTTP/1.1 502 Bad Gateway\r\n\r\nbody", stay_silent), 5,
     '"HTTP/1.1 502 Bad Gateway"'),
    ("503-target-refused", "connect", reply_with("connect", b"HTTP/1.0 503 Service Unavailable\r\n\r\n"), 5,
     '"HTTP/1.0 503 Service Unavailable"'),
    ("socks5-target-refused", "5", socks5_after_greeting(bytes([5, 5, 0, 1, 0, 0, 0, 0, 0, 0])), 5,
     "could not connect to example.com:22: Connection refused (reply code 5)"),
    ("socks4-target-refused", "4A", reply_with("4", b"\x00\x5b" + bytes(6)), 5,
     "could not connect to example.com:22: Request rejected or failed (reply code 91)"),
    ("socks5-method-version-4", "5", reply_with("5", b"\x04\x00"), 5, "sent an invalid reply (04 00)"),
    ("socks5-reply-version-4", "5", socks5_after_greeting(bytes([4, 0, 0, 1, 0, 0, 0, 0, 0, 0])), 5,
     "sent an invalid reply (05 00 04 00 00 01"),
    ("socks5-reserved-byte", "5", socks5_after_greeting(bytes([5, 0, 1, 1, 0, 0, 0, 0, 0, 0]), stay_silent), 5,
     "reserved byte is not zero"),
    ("socks5-address-type-7", "5", socks5_after_greeting(bytes([5, 0, 0, 7, 0, 0])), 5,
     "sent an invalid reply (05 00 05 00 00 07"),
    ("socks4-reply-version-4", "4", reply_with("4", b"\x04\x5a" + bytes(6)), 5, "sent an invalid reply (04 5a"),
    ("negotiate-token-not-base64", "connect", reply_with("connect", NEGOTIATE_NOT_BASE64), 6,
     "the Negotiate token of HTTP@127.0.0.1 is not base64: abcde"),
]  # fmt: skip


@pytest.mark.parametrize(("protocol", "server", "code", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_proxy(protocol: str, server: Handler, code: int, message: str) -> None:
    target = "127.0.0.1" if protocol == "4" else "example.com"
    with FakeServer(server) as p:
        r = run_fdpass([*NCFD, "-F", "-w", str(DEADLINE), "-X", protocol, "-x", f"127.0.0.1:{p.port}", target, "22"])
    assert_clean_failure(r, code, message)
    assert r.elapsed < BOUND


def assert_clean_failure(r: Handoff, code: int, message: str) -> None:
    assert r.sock is None and r.payload == b"", "a descriptor was passed on failure"
    assert r.returncode == code, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ncfd: "), r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.stderr


def ntlm_challenge(raw: bytes) -> Handler:
    """An NTLM proxy whose challenge (the second leg) is raw, on the kept-alive connection."""

    def handle(s: Session) -> None:
        for token in (b"", b" " + base64.b64encode(raw)):
            read_request(s, "connect")
            s.send(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM" + token
                   + b"\r\nContent-Length: 0\r\n\r\n")  # fmt: skip
        stay_silent(s)

    return handle


def test_a_malformed_ntlm_challenge_is_one_line_not_an_internal_error() -> None:
    env = {**os.environ, "NCFD_PROXY_PASSWORD": "s3cret"}
    with FakeServer(ntlm_challenge(b"NTLM")) as p:  # four bytes: pyspnego's parser raised struct.error
        proxy = ["-X", "connect", "-x", f"127.0.0.1:{p.port}"]
        r = run_fdpass([*NCFD, "-F", "-w", str(DEADLINE), "-P", "alice", *proxy, "h", "22"], env=env)
    assert_clean_failure(r, 6, "NTLM authentication failed: 127.0.0.1 sent a malformed challenge (error('unpack")
    assert r.elapsed < BOUND


def endless_body(status: bytes, framing: bytes) -> Handler:
    """A refusal with a Basic challenge, kept alive, whose body never ends."""

    def handle(s: Session) -> None:
        read_request(s, "connect")
        s.send(status + b'\r\nProxy-Authenticate: Basic realm="x"\r\n' + framing + b"\r\n")
        chunk = b"x" * 65536
        if b"chunked" in framing:
            chunk = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        while True:
            s.send(chunk)

    return handle


@pytest.mark.parametrize(
    ("server", "message"),
    [
        (endless_body(b"HTTP/1.1 407 Auth", b"Content-Length: 1000000000000\r\n"),
         "sent a reply body of more than 1048576 bytes"),
        (endless_body(b"HTTP/1.1 407 Auth", b"Transfer-Encoding: chunked\r\n"),
         "sent a reply body of more than 1048576 bytes"),
        # A refusal ends the run: its body is not read at all.
        (endless_body(b"HTTP/1.1 403 Forbidden", b"Content-Length: 1000000000000\r\n"),
         'refused CONNECT h:22: "HTTP/1.1 403 Forbidden"'),
    ],
    ids=["407-content-length", "407-chunked", "403"],
)  # fmt: skip
def test_an_endless_refusal_body_is_read_only_up_to_a_bound(server: Handler, message: str) -> None:
    """Before asking again on the same connection, ncfd reads the 407's body, up to 1 MiB: a
    proxy streaming forever gets one line at once, not the whole deadline."""
    env = {**os.environ, "NCFD_PROXY_PASSWORD": "s3cret"}
    with FakeServer(server) as p:
        proxy = ["-X", "connect", "-x", f"127.0.0.1:{p.port}"]
        r = run_fdpass([*NCFD, "-F", "-w", "20", "-P", "alice", *proxy, "h", "22"], env=env)
    assert_clean_failure(r, 5, f"ncfd: HTTP proxy 127.0.0.1:{p.port} {message}")
    assert r.elapsed < 10  # not the 20 s deadline
