"""ncfd with the real things users meet: ssh with ProxyUseFdpass logging in to sshd through squid,
tinyproxy, dante, microsocks and ssh -D, and OpenBSD nc side by side where its behaviour is the spec."""

from __future__ import annotations

import queue
import subprocess

import pytest

from tests.support import peers
from tests.support.fakeservers import FakeServer, half_closes_then_counts
from tests.support.fdharness import NCFD, Handoff, ncfd_command, run_fdpass
from tests.support.peers import require


def ssh(sshd: peers.Sshd, proxy_command: str, *extra: str, host: str = "127.0.0.1") -> subprocess.CompletedProcess[str]:
    argv = sshd.ssh_argv(proxy_command, "echo", "logged-in-as", "$USER", host=host, extra_opts=("-v", *extra))
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def assert_logged_in_with_fdpass(r: subprocess.CompletedProcess[str], sshd: peers.Sshd) -> None:
    assert r.returncode == 0, f"{r.stderr}\n{sshd.log_text()[-3000:]}"
    assert r.stdout.split()[0] == "logged-in-as"
    # ssh logs this only on its ProxyUseFdpass path (ssh_proxy_fdpass_connect).
    assert "Executing proxy dialer command" in r.stderr


def test_ssh_direct(sshd: peers.Sshd) -> None:
    assert_logged_in_with_fdpass(ssh(sshd, f"{ncfd_command()} -F %h %p"), sshd)


def test_ssh_direct_by_name(sshd: peers.Sshd) -> None:
    assert_logged_in_with_fdpass(ssh(sshd, f"{ncfd_command()} -F %h %p", host="localhost"), sshd)


@pytest.mark.parametrize("proxy_name", ["squid", "tinyproxy"])
def test_ssh_through_http_connect(request: pytest.FixtureRequest, sshd: peers.Sshd, proxy_name: str) -> None:
    proxy: peers.Proxy = request.getfixturevalue(proxy_name)
    r = ssh(sshd, f"{ncfd_command()} -F -X connect -x {proxy.address} %h %p")
    assert_logged_in_with_fdpass(r, sshd)


@pytest.mark.parametrize(("proxy_name", "protocol"), [("dante", "5"), ("dante", "4"), ("microsocks", "5")])
def test_ssh_through_socks(request: pytest.FixtureRequest, sshd: peers.Sshd, proxy_name: str, protocol: str) -> None:
    proxy: peers.Proxy = request.getfixturevalue(proxy_name)
    r = ssh(sshd, f"{ncfd_command()} -F -X {protocol} -x {proxy.address} %h %p")
    assert_logged_in_with_fdpass(r, sshd)


@pytest.mark.parametrize("protocol", ["4", "4A", "5"])
def test_ssh_through_ssh_dynamic_forward(sshd: peers.Sshd, ssh_socks: peers.Proxy, protocol: str) -> None:
    # OpenSSH's own SOCKS server is the one here that speaks SOCKS4A; "localhost" goes to it by name.
    r = ssh(sshd, f"{ncfd_command()} -F -X {protocol} -x {ssh_socks.address} %h %p", host="localhost")
    assert_logged_in_with_fdpass(r, sshd)


def test_ssh_without_fdpass_uses_the_relay(sshd: peers.Sshd, squid: peers.Proxy) -> None:
    argv = sshd.ssh_argv(f"{ncfd_command()} -X connect -x {squid.address} %h %p", "echo", "relayed")
    argv[argv.index("ProxyUseFdpass=yes")] = "ProxyUseFdpass=no"
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "relayed\n"


def test_proxyusefdpass_without_f_says_f_is_missing(sshd: peers.Sshd) -> None:
    """ssh reads the relayed banner where it waits for a descriptor, and closes: the fault is -F's absence."""
    r = ssh(sshd, f"{ncfd_command()} %h %p")
    assert r.returncode == 255
    assert "proxy dialer did not pass back a connection" in r.stderr
    assert r.stderr.splitlines()[-1] == (
        f"ncfd: relay to 127.0.0.1 port {sshd.port} failed: the other end closed stdin and stdout (one unix socket,"
        " as ssh gives with ProxyUseFdpass yes, waiting for a socket, not bytes): add -F to the ProxyCommand"
    )


def test_ssh_reports_a_refusing_proxy_through_ncfd(sshd: peers.Sshd, dante: peers.Proxy) -> None:
    closed = peers.free_port()
    proxy_command = f"{ncfd_command()} -F -x {dante.address} 127.0.0.1 {closed}"
    r = ssh(sshd, proxy_command)
    assert r.returncode == 255
    assert "ncfd: SOCKS5 proxy 127.0.0.1:" in r.stderr
    assert "could not connect to 127.0.0.1:" in r.stderr
    assert "proxy dialer did not pass back a connection" in r.stderr


# --- side by side with nc.openbsd -----------------------------------------------------------


def both(args: list[str]) -> tuple[Handoff, Handoff]:
    require("nc.openbsd")
    return run_fdpass([*NCFD, "-F", *args]), run_fdpass(["nc.openbsd", "-F", *args])


@pytest.mark.parametrize(
    ("proxy_name", "protocol"),
    [("squid", "connect"), ("tinyproxy", "connect"), ("dante", "5"), ("dante", "4"), ("microsocks", "5")],
)
def test_same_socket_as_nc(
    request: pytest.FixtureRequest, banner_target: peers.Target, proxy_name: str, protocol: str
) -> None:
    proxy: peers.Proxy = request.getfixturevalue(proxy_name)
    ours, nc = both(["-X", protocol, "-x", proxy.address, "127.0.0.1", str(banner_target.port)])
    for r in (ours, nc):
        assert r.payload == b"\0"
        assert r.sock is not None and r.sock.getpeername() == ("127.0.0.1", proxy.port)
        r.assert_banner_and_echo(banner_target.banner)


def test_http_refusal_quotes_the_same_status_line_as_nc(squid: peers.Proxy) -> None:
    closed = peers.free_port()
    ours, nc = both(["-X", "connect", "-x", squid.address, "127.0.0.1", str(closed)])
    assert nc.returncode == 1 and nc.sock is None
    # nc: Proxy error: "HTTP/1.1 503 Service Unavailable"
    status_line = nc.stderr.split('"')[1]
    assert status_line.startswith("HTTP/1.1 5")
    assert ours.returncode == 5 and ours.sock is None
    assert ours.stderr == f'ncfd: HTTP proxy {squid.address} refused CONNECT 127.0.0.1:{closed}: "{status_line}"\n'


def test_socks5_refusal_names_the_same_reply_as_nc(dante: peers.Proxy) -> None:
    closed = peers.free_port()
    ours, nc = both(["-X", "5", "-x", dante.address, "127.0.0.1", str(closed)])
    # nc: connection failed, SOCKSv5 error: Connection refused
    assert nc.returncode == 1 and nc.sock is None
    reply_text = nc.stderr.strip().split("SOCKSv5 error: ")[1]
    assert ours.returncode == 5 and ours.sock is None
    assert f"could not connect to 127.0.0.1:{closed}: {reply_text} (reply code" in ours.stderr


def test_refused_proxy_nc_is_silent_ncfd_says_so() -> None:
    closed = peers.free_port()
    ours, nc = both(["-X", "connect", "-x", f"127.0.0.1:{closed}", "example.com", "22"])
    assert nc.returncode == 1 and nc.stderr == ""
    assert ours.returncode == 4
    assert ours.stderr == f"ncfd: connect to HTTP proxy 127.0.0.1 port {closed} failed: Connection refused\n"


UPLOAD = 20_000_000  # more than the buffers on the way hold


def test_a_half_close_through_dante_leaves_stdin_flowing_as_with_nc(dante: peers.Proxy) -> None:
    require("nc.openbsd")
    counted: queue.Queue[int] = queue.Queue()
    with FakeServer(half_closes_then_counts(counted)) as t:
        for relay in (NCFD, ["nc.openbsd"]):
            argv = [*relay, "-N", "-X", "5", "-x", dante.address, "127.0.0.1", str(t.port)]
            r = subprocess.run(argv, input=b"u" * UPLOAD, capture_output=True, timeout=60)
            assert (r.returncode, r.stdout, r.stderr) == (0, b"ready\n", b""), relay
            assert counted.get(timeout=10) == UPLOAD, relay


@pytest.mark.parametrize("proxy_name", ["squid", "tinyproxy"])
def test_a_proxy_that_drops_the_tunnel_at_a_half_close_fails_the_relay_where_nc_says_nothing(
    request: pytest.FixtureRequest, proxy_name: str
) -> None:
    """These proxies end the whole tunnel at the server's half-close: stdin cannot be delivered.
    nc exits 0 all the same; ncfd says so."""
    require("nc.openbsd")
    proxy: peers.Proxy = request.getfixturevalue(proxy_name)
    counted: queue.Queue[int] = queue.Queue()
    with FakeServer(half_closes_then_counts(counted)) as t:
        argv = ["-N", "-X", "connect", "-x", proxy.address, "127.0.0.1", str(t.port)]
        nc = subprocess.run(["nc.openbsd", *argv], input=b"u" * UPLOAD, capture_output=True, timeout=60)
        assert counted.get(timeout=10) < UPLOAD
        ours = subprocess.run([*NCFD, *argv], input=b"u" * UPLOAD, capture_output=True, timeout=60)
        assert counted.get(timeout=10) < UPLOAD
    # "ready" may be lost too: a proxy closing on bytes it has not read resets the connection.
    assert nc.returncode == 0
    assert ours.returncode == 1
    assert ours.stderr.decode() in {
        f"ncfd: relay to 127.0.0.1 port {t.port} failed: the connection was {how}\n"
        for how in ("closed before all of stdin was sent", "reset before the end of stdin")
    }
