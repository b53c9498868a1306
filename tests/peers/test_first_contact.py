"""Where a newcomer stopped, each row of that table: --version, the forgotten -X connect, usage
errors that name the bad value and the valid ones, the SOCKS5 server that wants a password, files
named on the command line, -n/-4/-6 as the reason a name does not resolve, and a chain of proxies
with passwords of their own."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support import peers
from tests.support.fdharness import NCFD, run_fdpass
from tests.support.first_contact import one_line


@pytest.mark.parametrize("kind", ["squid", "tinyproxy"])
def test_a_forgotten_x_connect_costs_seconds_and_says_so(request: pytest.FixtureRequest, kind: str) -> None:
    proxy: peers.Proxy = request.getfixturevalue(kind)
    start = time.monotonic()
    r = run_fdpass([*NCFD, "-F", "-x", proxy.address, "127.0.0.1", "22"])  # SOCKS5, nc's default
    elapsed = time.monotonic() - start
    assert r.sock is None and r.returncode == 5
    assert one_line(r) == (
        f"ncfd: SOCKS5 proxy {proxy.address} did not answer the SOCKS5 greeting within 3s: a SOCKS5 server answers"
        " at once, an HTTP proxy never; if it is one, use -X connect (or an http:// proxy URL); a slow SOCKS5 server"
        " gets longer with -w"
    )
    assert elapsed < 3 + 7  # the greeting's bound, not the 60 s deadline


def test_a_forgotten_x_connect_with_w_names_the_greeting(squid: peers.Proxy) -> None:
    """-w replaces the greeting's bound; what timed out is still the greeting, not the tunnel."""
    r = run_fdpass([*NCFD, "-F", "-w", "1", "-x", squid.address, "127.0.0.1", "22"])
    assert r.sock is None and r.returncode == 7
    assert one_line(r) == (
        f"ncfd: timed out after 1s waiting for the SOCKS5 greeting's answer from SOCKS5 proxy {squid.address} (an"
        " HTTP proxy never answers it: if it is one, use -X connect)"
    )


@pytest.mark.parametrize(
    ("kind", "answer"),
    [
        ("dante", "closed the connection without answering, as a SOCKS server does when sent an HTTP request"),
        ("microsocks", "answered like a SOCKS server (05 ff)"),
    ],
)
def test_an_http_request_to_a_socks_server_says_x_5(request: pytest.FixtureRequest, kind: str, answer: str) -> None:
    """The opposite of the forgotten -X connect: each real SOCKS server answers a CONNECT line its own way."""
    proxy: peers.Proxy = request.getfixturevalue(kind)
    r = run_fdpass([*NCFD, "-F", "-X", "connect", "-x", proxy.address, "127.0.0.1", "22"])
    assert r.sock is None and r.returncode == 5
    fix = "if it is one, use -X 5 (or a socks5h:// proxy URL)"
    assert one_line(r) == f"ncfd: HTTP proxy {proxy.address} {answer}: {fix}"


def test_a_real_socks5_server_answers_its_greeting_at_once(dante: peers.Proxy, banner_target: peers.Target) -> None:
    """The bound does not touch a SOCKS5 server, whatever the destination makes it wait for."""
    r = run_fdpass([*NCFD, "-F", "-x", dante.address, "127.0.0.1", str(banner_target.port)])
    r.assert_banner_and_echo(banner_target.banner)


def test_a_socks5_server_that_wants_a_password_says_p(microsocks_auth: peers.ProxyFactory) -> None:
    proxy = microsocks_auth("alice", "s3cret")
    r = run_fdpass([*NCFD, "-F", "-x", proxy.address, "127.0.0.1", "22"])
    assert r.sock is None and r.returncode == 6
    assert one_line(r) == (
        f"ncfd: SOCKS5 proxy {proxy.address} accepts none of our authentication methods (answered 05 ff): it wants"
        " a user and password (-P user)"
    )


def test_a_chain_of_proxies_with_a_password_each(
    microsocks_auth: peers.ProxyFactory, squid_auth: peers.ProxyFactory, banner_target: peers.Target, tmp_path: Path
) -> None:
    socks = microsocks_auth("alice", "first-secret")
    http = squid_auth("bob", "second secret", schemes=("basic",))
    netrc = tmp_path / "proxies.netrc"
    # Both proxies listen on 127.0.0.1: the first is named by address, the second by localhost.
    netrc.write_text(
        'machine 127.0.0.1 login alice password first-secret\nmachine localhost login bob password "second secret"\n'
    )
    netrc.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "NCFD_PROXY_PASSWORD"}
    argv = [*NCFD, "-F", "--proxy-netrc", str(netrc), "-x", f"socks5h://{socks.address}",
            "-x", f"http://localhost:{http.port}", "127.0.0.1", str(banner_target.port)]  # fmt: skip
    r = run_fdpass(["setsid", *argv], env=env)  # no terminal: a password not found would fail
    r.assert_banner_and_echo(banner_target.banner)
    netrc.chmod(0o644)
    r = run_fdpass(["setsid", *argv], env=env)
    assert r.returncode == 2
    assert (
        one_line(r) == f"ncfd: --proxy-netrc file {netrc} is readable by others: chmod 600 it (as ssh requires of keys)"
    )
