"""ncfd against scripted proxies: the bytes it sends, the bytes it leaves for ssh, and its errors."""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
import time

import pytest

from ncfd.tunnel.socks import GREETING_LIMIT
from tests.support.fakeservers import FAKE_TARGET_BANNER, FakeServer, Session, http_proxy, socks4_proxy, socks5_proxy
from tests.support.fdharness import NCFD, Handoff, run_fdpass, run_ncfd
from tests.support.peers import free_port


def handoff(server: FakeServer, *args: str) -> Handoff:
    return run_fdpass([*NCFD, "-F", "-x", f"127.0.0.1:{server.port}", *args])


def assert_passed_with_banner(r: Handoff, banner: bytes = FAKE_TARGET_BANNER) -> None:
    assert r.returncode == 0, r.stderr
    assert r.payload == b"\0"
    assert r.stderr == ""
    assert r.read_exactly(len(banner)) == banner
    r.close()


def assert_failed(r: Handoff, code: int, message: str) -> None:
    assert r.sock is None and r.payload == b"", "a descriptor was passed on failure"
    assert r.returncode == code, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("ncfd: ")
    assert message in lines[0], lines[0]


# --- SOCKS5 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "request_bytes"),
    [
        ("example.com", b"\x05\x01\x00\x03\x0bexample.com\x00\x16"),
        ("Example.COM", b"\x05\x01\x00\x03\x0bExample.COM\x00\x16"),
        ("192.0.2.7", b"\x05\x01\x00\x01\xc0\x00\x02\x07\x00\x16"),
        ("127.1", b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x16"),
        ("2001:db8::1", b"\x05\x01\x00\x04" + socket.inet_pton(socket.AF_INET6, "2001:db8::1") + b"\x00\x16"),
    ],
)
def test_socks5_wire_bytes_and_banner_kept(target: str, request_bytes: bytes) -> None:
    with FakeServer(socks5_proxy()) as p:
        r = handoff(p, target, "22")
        assert_passed_with_banner(r)
        assert p.sessions[0].received == b"\x05\x01\x00" + request_bytes


def test_socks5_names_are_never_resolved_locally() -> None:
    with FakeServer(socks5_proxy()) as p:
        assert_passed_with_banner(handoff(p, "no-such-host.invalid", "22"))
        assert b"\x03\x14no-such-host.invalid" in p.sessions[0].received


@pytest.mark.parametrize(
    "reply",
    [
        b"\x05\x00\x00\x03\x09localhost\x00\x16",  # bound address as a name: nc rejects it
        b"\x05\x00\x00\x04" + bytes(16) + b"\x00\x16",
    ],
)
def test_socks5_reply_address_types(reply: bytes) -> None:
    with FakeServer(socks5_proxy(reply=reply)) as p:
        assert_passed_with_banner(handoff(p, "example.com", "22"))


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (1, "General SOCKS server failure"),
        (2, "Connection not allowed by ruleset"),
        (3, "Network unreachable"),
        (4, "Host unreachable"),
        (5, "Connection refused"),
        (6, "TTL expired"),
        (7, "Command not supported"),
        (8, "Address type not supported"),
        (9, "Unknown error"),
    ],
)
def test_socks5_reply_codes(code: int, text: str) -> None:
    reply = bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0])
    with FakeServer(socks5_proxy(reply=reply)) as p:
        assert_failed(
            handoff(p, "example.com", "22"),
            5,
            f"SOCKS5 proxy 127.0.0.1:{p.port} could not connect to example.com:22: {text} (reply code {code})",
        )


def test_socks5_no_acceptable_method_is_an_auth_error() -> None:
    with FakeServer(socks5_proxy(method_reply=b"\x05\xff")) as p:
        assert_failed(handoff(p, "example.com", "22"), 6, "accepts none of our authentication methods")


def test_socks5_proxy_wanting_a_password_says_so() -> None:
    with FakeServer(socks5_proxy(method_reply=b"\x05\x02")) as p:
        assert_failed(handoff(p, "example.com", "22"), 6, "requires authentication")


def test_only_the_socks5_greeting_is_bounded_by_the_greeting_limit() -> None:
    """Without -w: a SOCKS5 server answers the greeting from its own knowledge, at once; its answer
    to the request waits on the far end (Tor builds a circuit) and may take longer: it has what is
    left of the default deadline."""

    def slow_to_connect(s: Session) -> None:
        _, n = s.recv_exactly(2)
        s.recv_exactly(n)
        s.send(b"\x05\x00")
        time.sleep(GREETING_LIMIT + 1.5)
        socks5_proxy(method_reply=b"")(s)

    with FakeServer(slow_to_connect) as p:
        assert_passed_with_banner(handoff(p, "example.com", "22"))


def test_a_w_longer_than_the_greeting_limit_is_what_the_greeting_gets() -> None:
    """-w is the user's own bound: a SOCKS5 server slow to answer even the greeting has it all."""

    def slow_greeting(s: Session) -> None:
        time.sleep(GREETING_LIMIT + 1.5)
        socks5_proxy()(s)

    with FakeServer(slow_greeting) as p:
        assert_passed_with_banner(handoff(p, "-w", "20", "example.com", "22"))


def test_socks5_host_name_too_long() -> None:
    with FakeServer(socks5_proxy()) as p:
        assert_failed(handoff(p, "a." * 127 + "com", "22"), 2, "host name too long for SOCKS5")
        assert p.settled() == []  # refused before bothering the proxy


@pytest.mark.parametrize("protocol", ["5", "4A"])
def test_a_name_socks_cannot_encode_is_refused_before_connecting(protocol: str) -> None:
    with FakeServer(socks5_proxy() if protocol == "5" else socks4_proxy()) as p:
        assert_failed(handoff(p, "-X", protocol, "a..b", "22"), 2, "invalid destination name 'a..b'")
        assert p.settled() == []


# --- SOCKS4 / 4A ----------------------------------------------------------------------------


def test_socks4_resolves_locally_to_ipv4() -> None:
    with FakeServer(socks4_proxy()) as p:
        assert_passed_with_banner(handoff(p, "-X", "4", "localhost", "22"))
        assert p.sessions[0].received == b"\x04\x01\x00\x16\x7f\x00\x00\x01\x00"


def test_socks4a_sends_the_name() -> None:
    with FakeServer(socks4_proxy()) as p:
        assert_passed_with_banner(handoff(p, "-X", "4A", "example.com", "22"))
        assert p.sessions[0].received == b"\x04\x01\x00\x16\x00\x00\x00\x01\x00example.com\x00"


def test_socks4_rejection() -> None:
    with FakeServer(socks4_proxy(reply=b"\x00\x5b" + bytes(6))) as p:
        assert_failed(handoff(p, "-X", "4", "127.0.0.1", "22"), 5, "Request rejected or failed (reply code 91)")


def test_socks4_cannot_carry_ipv6() -> None:
    with FakeServer(socks4_proxy()) as p:
        assert_failed(handoff(p, "-X", "4", "2001:db8::1", "22"), 2, "SOCKS4 cannot carry the IPv6 address")
        assert p.settled() == []  # refused before bothering the proxy


def test_socks4_unresolvable_name() -> None:
    with FakeServer(socks4_proxy()) as p:
        assert_failed(handoff(p, "-X", "4", "no-such-host.invalid", "22"), 3, "cannot resolve")
        # Resolved once the proxy is connected, as nc does; nothing is sent to it.
        assert [s.received for s in p.settled()] == [b""]


# --- HTTP CONNECT ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 Connection established\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nProxy-agent: test\r\n\r\n",
        b"HTTP/1.1 200\n\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
    ],
)
def test_connect_reply_and_banner_in_one_segment(reply: bytes) -> None:
    with FakeServer(http_proxy(reply + FAKE_TARGET_BANNER)) as p:
        r = handoff(p, "-X", "connect", "example.com", "22")
        assert_passed_with_banner(r)
        assert p.sessions[0].received.startswith(b"CONNECT example.com:22 HTTP/1.1\r\nHost: example.com:22\r\n")


def test_connect_headers_never_leak_when_the_status_line_comes_alone() -> None:
    def handler(s: Session) -> None:
        s.recv_until(b"\r\n\r\n")
        s.send(b"HTTP/1.1 200 OK\r\n")
        time.sleep(0.2)
        s.send(b"Proxy-agent: slow\r\n\r\n" + FAKE_TARGET_BANNER)
        s.echo()

    with FakeServer(handler) as p:
        assert_passed_with_banner(handoff(p, "-X", "connect", "example.com", "22"))


def test_connect_ipv6_target_is_bracketed_on_the_wire() -> None:
    with FakeServer(http_proxy(b"HTTP/1.1 200 OK\r\n\r\n" + FAKE_TARGET_BANNER)) as p:
        assert_passed_with_banner(handoff(p, "-X", "connect", "2001:db8::1", "22"))
        assert p.sessions[0].received.startswith(b"CONNECT [2001:db8::1]:22 HTTP/1.1\r\nHost: [2001:db8::1]:22\r\n")


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 403 Forbidden\r\n\r\n", 'refused CONNECT example.com:22: "HTTP/1.1 403 Forbidden"'),
        (b"HTTP/1.0 502 Bad Gateway\r\n\r\nthe body", '"HTTP/1.0 502 Bad Gateway"'),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "did not answer like an HTTP proxy"),
    ],
)
def test_connect_refusals(reply: bytes, message: str) -> None:
    with FakeServer(http_proxy(reply, then_echo=False)) as p:
        assert_failed(handoff(p, "-X", "connect", "example.com", "22"), 5, message)


def test_connect_proxy_closing_without_answer() -> None:
    with FakeServer(http_proxy(b"", then_echo=False)) as p:
        assert_failed(handoff(p, "-X", "connect", "example.com", "22"), 5, "closed the connection without answering")


def test_connect_target_with_crlf_is_refused_before_anything_is_sent() -> None:
    with FakeServer(http_proxy(b"HTTP/1.1 200 OK\r\n\r\n")) as p:
        assert_failed(handoff(p, "-X", "connect", "a\r\nX: y", "22"), 2, "invalid destination for HTTP CONNECT")
        assert p.settled() == []  # not even a connection


# --- deadlines, refusals, stdout ------------------------------------------------------------


def test_refused_proxy_is_reported_without_v() -> None:
    port = free_port()
    r = run_fdpass([*NCFD, "-F", "-x", f"127.0.0.1:{port}", "example.com", "22"])
    assert_failed(r, 4, f"connect to SOCKS5 proxy 127.0.0.1 port {port} failed: Connection refused")


def test_unresolvable_proxy() -> None:
    r = run_fdpass([*NCFD, "-F", "-x", "no-such-proxy.invalid", "example.com", "22"])
    assert_failed(r, 3, 'cannot resolve SOCKS5 proxy "no-such-proxy.invalid"')


def test_direct_connection_is_passed() -> None:
    def banner(s: Session) -> None:
        s.send(FAKE_TARGET_BANNER)
        s.echo()

    with FakeServer(banner) as t:
        assert_passed_with_banner(run_fdpass([*NCFD, "-F", "127.0.0.1", str(t.port)]))


# ncfd's entry point, with a write to descriptor 1 right after -F has claimed stdout (a library's print).
STRAY_AFTER_CLAIM = """
import os, ncfd.net.fdpass as fdpass
claim = fdpass.claim_stdout
fdpass.claim_stdout = lambda: (claim(), os.write(1, b"stray\\n"))[0]
from ncfd.cli import main
raise SystemExit(main())
"""


def test_a_stray_write_after_stdout_is_claimed_goes_to_stderr() -> None:
    """Once -F has taken stdout, descriptor 1 is stderr: nothing reaches ssh ahead of the descriptor."""

    def banner(s: Session) -> None:
        s.send(FAKE_TARGET_BANNER)
        s.echo()

    with FakeServer(banner) as t:
        r = run_fdpass([sys.executable, "-c", STRAY_AFTER_CLAIM, "-F", "127.0.0.1", str(t.port)])
        assert (r.returncode, r.payload, r.stderr) == (0, b"\0", "stray\n")
        assert r.read_exactly(len(FAKE_TARGET_BANNER)) == FAKE_TARGET_BANNER
        r.close()


def test_z_with_f_still_negotiates_and_passes_the_socket() -> None:
    """-z is nc's connect-then-exit; with -F, as in nc, the negotiated socket is still passed."""
    with FakeServer(http_proxy(b"HTTP/1.1 200 OK\r\n\r\n" + FAKE_TARGET_BANNER)) as p:
        r = handoff(p, "-z", "-X", "connect", "example.com", "22")
        assert r.returncode == 0, r.stderr
        assert r.payload == b"\0" and r.stderr == ""
        assert r.read_exactly(len(FAKE_TARGET_BANNER)) == FAKE_TARGET_BANNER
        assert r.sock is not None
        r.sock.sendall(b"still open\n")
        assert r.read_exactly(11) == b"still open\n"
        r.close()
        assert p.sessions[0].received.startswith(b"CONNECT example.com:22 HTTP/1.1\r\n")


def test_passed_socket_is_the_tcp_connection_and_blocking() -> None:
    def banner(s: Session) -> None:
        s.send(FAKE_TARGET_BANNER)
        s.echo()

    with FakeServer(banner) as t:
        r = run_fdpass([*NCFD, "-F", "127.0.0.1", str(t.port)])
        assert r.sock is not None
        assert r.sock.type == socket.SOCK_STREAM and r.sock.family == socket.AF_INET
        assert r.sock.getpeername() == ("127.0.0.1", t.port)
        assert os.get_blocking(r.sock.fileno())
        assert r.extra_fds == []
        r.close()


def test_passed_socket_has_the_buffer_sizes_of_i_and_o() -> None:
    # Distinct sizes, under net.core.rmem_max and wmem_max and away from Linux's defaults (128 KiB,
    # 16 KiB), so that neither a size ignored nor the two swapped goes unseen.
    rcvbuf, sndbuf = 40_000, 24_000
    doubled = 2 if sys.platform == "linux" else 1  # Linux keeps twice the size, for its bookkeeping
    with FakeServer(lambda s: s.send(FAKE_TARGET_BANNER)) as t:
        r = run_fdpass([*NCFD, "-F", "-I", str(rcvbuf), "-O", str(sndbuf), "127.0.0.1", str(t.port)])
        assert r.returncode == 0, r.stderr
        assert r.sock is not None
        assert r.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == rcvbuf * doubled
        assert r.sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == sndbuf * doubled
        r.close()


def test_verbose_narrates_each_step_on_stderr_only() -> None:
    with FakeServer(http_proxy(b"HTTP/1.1 200 OK\r\n\r\n" + FAKE_TARGET_BANNER)) as p:
        r = handoff(p, "-v", "-X", "connect", "example.com", "22")
        assert r.payload == b"\0" and r.returncode == 0
        steps = [
            "connecting to HTTP proxy",
            "sending CONNECT example.com:22",
            'answered "HTTP/1.1 200 OK"',
            "Connection to example.com 22 port [tcp/ssh] succeeded!",
            "passed the connected socket",
        ]
        for step in steps:
            assert step in r.stderr
        assert r.read_exactly(len(FAKE_TARGET_BANNER)) == FAKE_TARGET_BANNER
        r.close()


def test_stdout_pipe_is_refused_with_a_pointer_to_proxyusefdpass() -> None:
    with FakeServer(socks5_proxy()) as p:
        r = run_ncfd(["-F", "-x", f"127.0.0.1:{p.port}", "example.com", "22"])
        assert r.returncode == 8
        assert r.stderr.decode().startswith("ncfd: -F needs stdout to be the unix socket ssh gives a ProxyCommand")
        assert "ProxyUseFdpass yes; stdout is a pipe" in r.stderr.decode()
        assert p.settled() == []  # refused before bothering the proxy


def test_stdout_tty_is_refused() -> None:
    leader, follower = pty.openpty()
    try:
        r = subprocess.run([*NCFD, "-F", "127.0.0.1", "1"], stdout=follower, stderr=subprocess.PIPE, timeout=30)
    finally:
        os.close(follower)
        os.close(leader)
    assert r.returncode == 8
    assert r.stderr == (
        b"ncfd: -F needs stdout to be the unix socket ssh gives a ProxyCommand with ProxyUseFdpass yes; stdout is a"
        b" terminal\n"
    )
