"""Without -F: ncfd relays stdin/stdout like nc, for ssh without ProxyUseFdpass."""

from __future__ import annotations

import subprocess
import time

from fakeservers import BANNER, FakeServer, Session, http_proxy, socks5_proxy
from fdharness import NCFD, run_ncfd


def banner_then_echo(s: Session) -> None:
    s.send(BANNER)
    s.echo()


def test_relay_direct_with_N_ends_when_the_server_closes() -> None:
    with FakeServer(banner_then_echo) as t:
        r = run_ncfd(["-N", "127.0.0.1", str(t.port)], input=b"hello\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == BANNER + b"hello\n"
    assert r.stderr == b""


def test_relay_through_http_proxy_keeps_banner_and_leaks_no_headers() -> None:
    reply = b"HTTP/1.1 200 Connection established\r\nProxy-agent: fake\r\n\r\n"
    with FakeServer(http_proxy(reply + BANNER)) as p:
        r = run_ncfd(["-N", "-X", "connect", "-x", f"127.0.0.1:{p.port}", "example.com", "22"], input=b"ping\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == BANNER + b"ping\n"


def test_relay_through_socks5() -> None:
    with FakeServer(socks5_proxy()) as p:
        r = run_ncfd(["-N", "-x", f"127.0.0.1:{p.port}", "example.com", "22"], input=b"ping\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == BANNER + b"ping\n"


def test_network_close_ends_the_relay_even_with_stdin_open() -> None:
    def banner_and_close(s: Session) -> None:
        s.send(BANNER)

    with FakeServer(banner_and_close) as t:
        proc = subprocess.Popen([*NCFD, "127.0.0.1", str(t.port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            out, _ = proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == 0
    assert out == BANNER


def test_q_quits_after_stdin_eof_though_the_server_stays() -> None:
    def echo_then_linger(s: Session) -> None:
        s.echo()
        time.sleep(20)

    with FakeServer(echo_then_linger) as t:
        start = time.monotonic()
        r = run_ncfd(["-q", "1", "127.0.0.1", str(t.port)], input=b"x")
        assert r.returncode == 0
        assert 0.9 < time.monotonic() - start < 10
        assert r.stdout == b"x"


def test_d_does_not_read_stdin() -> None:
    with FakeServer(banner_then_echo) as t:
        r = run_ncfd(["-d", "-w", "1", "127.0.0.1", str(t.port)], input=b"never sent")
    assert r.stdout == BANNER
    assert t.sessions[0].received == b""


def test_z_connects_and_exits() -> None:
    with FakeServer(banner_then_echo) as t:
        r = run_ncfd(["-z", "-v", "127.0.0.1", str(t.port)])
    assert r.returncode == 0
    assert f"Connection to 127.0.0.1 {t.port} port [tcp/".encode() in r.stderr
    assert r.stdout == b""
