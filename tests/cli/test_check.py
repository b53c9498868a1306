"""--check and ncfd.check(): the report a user reads when ssh through the proxy fails, against the
real peers (squid, tinyproxy, dante, a PAC from nginx, sshd's banner, a Kerberos proxy) and scripted
proxies in the way: one that answers the tunnel with a TLS handshake, one with an HTML page."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import peers
from tests.support.check import PROXY_VARIABLES, SERVER_HELLO, TUNNEL_OK, check
from tests.support.fakeservers import FakeServer, http_proxy
from tests.support.fdharness import NCFD, run_ncfd

BLOCK_PAGE = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 93\r\n\r\n"
              b"<!DOCTYPE html><html><head><title>Blocked \x1b[31mby policy</title></head>"
              b"<body>No.</body></html>")  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A cache of ncfd's own, no proxy or password from the test runner's environment."""
    base = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    return {**base, "XDG_CACHE_HOME": str(tmp_path / "cache")}


# --- proxies in the way ---------------------------------------------------------------------------


def test_a_proxy_answering_the_tunnel_with_tls_is_named_as_in_the_way(env: dict[str, str]) -> None:
    with FakeServer(http_proxy(TUNNEL_OK + SERVER_HELLO)) as proxy:
        code, steps, stderr = check(["-X", "connect", "-x", f"127.0.0.1:{proxy.port}", "ssh.example", "22"], env)
    assert (code, stderr) == (5, ""), steps
    assert "the far end sent a TLS handshake record (16 03 03 00 4a 02 00 00 46 03 03 00 01 02 03 04 ...)" in steps
    assert steps[-1].startswith("verdict: FAILED (exit 5): a TLS handshake came through the tunnel instead of the"
                                " server's first words: a TLS-inspecting proxy is in the way, and ssh cannot work"
                                " through it")  # fmt: skip


def test_a_proxy_answering_the_tunnel_with_an_html_page_is_named_escaped(env: dict[str, str]) -> None:
    with FakeServer(http_proxy(TUNNEL_OK + BLOCK_PAGE)) as proxy:
        r = subprocess.run([*NCFD, "--check", "-X", "connect", "-x", f"127.0.0.1:{proxy.port}", "ssh.example", "22"],
                           capture_output=True, timeout=30, env=env, stdin=subprocess.DEVNULL)  # fmt: skip
    assert r.returncode == 5, r.stdout
    assert b"\x1b" not in r.stdout  # the page's escape sequence never reaches the terminal
    out = r.stdout.decode()
    assert 'the far end sent an HTTP answer: "HTTP/1.1 403 Forbidden", page title "Blocked \\x1b[31mby policy"' in out
    assert "verdict: FAILED (exit 5): an HTTP answer came through the tunnel instead of the server's first words" in out


def test_a_far_end_that_stays_silent_is_a_working_tunnel_said_so_within_the_wait(env: dict[str, str]) -> None:
    with FakeServer(http_proxy(TUNNEL_OK)) as proxy:
        start = time.monotonic()
        code, steps, _ = check(["-w", "2", "-X", "connect", "-x", f"127.0.0.1:{proxy.port}", "h.example", "22"], env)
        elapsed = time.monotonic() - start
    assert code == 0, steps
    assert 1.9 < elapsed < 10
    assert "tunnel up; reading what the far end sends first (up to 2s)" in steps
    assert "the far end sent nothing" in steps
    assert steps[-1].startswith("verdict: ok: the tunnel works; the far end sent nothing within 2s: a server that")


def test_a_far_end_that_closes_at_once_fails_with_exit_1(env: dict[str, str]) -> None:
    with FakeServer(http_proxy(TUNNEL_OK, then_echo=False)) as proxy:
        code, steps, _ = check(["-X", "connect", "-x", f"127.0.0.1:{proxy.port}", "h.example", "22"], env)
    assert code == 1, steps
    assert "the far end closed the tunnel" in steps
    assert steps[-1].startswith("verdict: FAILED (exit 1): the far end closed the tunnel without a word")


def test_the_usual_failure_of_the_tunnel_is_the_verdict_with_its_exit_status(env: dict[str, str]) -> None:
    port = peers.free_port()
    code, steps, stderr = check(["-X", "connect", "-x", f"127.0.0.1:{port}", "h.example", "22"], env)
    assert (code, stderr) == (4, "")
    refused = f"connect to HTTP proxy 127.0.0.1 port {port} failed: Connection refused"
    assert steps[-1] == f"verdict: no tunnel (exit 4): {refused}"


@pytest.mark.parametrize("other", ["-F", "--show-route"])
def test_check_with_f_or_show_route_is_a_usage_error(other: str) -> None:
    r = run_ncfd(["--check", other, "-x", "127.0.0.1:1", "h", "22"])
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.decode() == (f"ncfd: --check goes the way -F would and prints a report on stdout: not with {other}"
                                 " (give --check the ProxyCommand's other options)\n")  # fmt: skip
