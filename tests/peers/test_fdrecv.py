"""ncfd-fdrecv: receive a passed socket the way ssh does, then relay it or exec a program on it.

Driven with ncfd -F and nc.openbsd -F, directly and through dante and squid, against the banner/echo
target; and with broken dialers for each way the hand-off can fail."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support import peers
from tests.support.fdharness import NCFD, ncfd_command
from tests.support.fdrecv import FDRECV, HINT, PREFIX, fdrecv, fdrecv_watching_the_dialer, one_error_line
from tests.support.peers import require


def dialer_argv(name: str) -> list[str]:
    if name == "nc.openbsd":
        require("nc.openbsd")
        return ["nc.openbsd"]
    return list(NCFD)


def proxy_args(request: pytest.FixtureRequest, proxy_name: str) -> list[str]:
    if proxy_name == "direct":
        return []
    proxy: peers.Proxy = request.getfixturevalue(proxy_name)
    return ["-X", {"dante": "5", "squid": "connect"}[proxy_name], "-x", proxy.address]


DIALERS = ["ncfd", "nc.openbsd"]
ROUTES = ["direct", "dante", "squid"]


# --- relay mode -----------------------------------------------------------------------------


def read_exactly(fd: int, n: int, timeout: float = 10) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < n:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, n - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("dialer", DIALERS)
def test_relay(request: pytest.FixtureRequest, banner_target: peers.Target, dialer: str, route: str) -> None:
    argv = [*dialer_argv(dialer), "-F", *proxy_args(request, route), "127.0.0.1", str(banner_target.port)]
    proc = subprocess.Popen([*FDRECV, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        out = proc.stdout.fileno()
        assert read_exactly(out, len(banner_target.banner)) == banner_target.banner
        for line in (b"ping\n", b"pong\n"):
            proc.stdin.write(line)
            proc.stdin.flush()
            assert read_exactly(out, len(line)) == line
        # stdin's EOF half-closes the socket; the target (or squid, which does not half-close) then
        # closes, which ends the relay.
        proc.stdin.close()
        rest = read_exactly(out, 1)
        proc.wait(timeout=10)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert rest == b"" and err == b""


def test_stdin_at_its_end_lets_an_http_proxy_end_the_tunnel_before_a_late_banner(squid: peers.Proxy) -> None:
    """What the help warns of: </dev/null prints nothing, exit 0; stdin kept open prints the banner."""
    late = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = late.accept()
                time.sleep(1)  # a server farther away than the proxy
                with conn, contextlib.suppress(OSError):
                    conn.sendall(b"SSH-2.0-late\r\n")

    threading.Thread(target=serve, daemon=True).start()
    argv = [*FDRECV, *NCFD, "-F", "-X", "connect", "-x", squid.address, "127.0.0.1", str(late.getsockname()[1])]
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            assert proc.stdout is not None and proc.stdin is not None
            assert proc.stdout.readline() == b"SSH-2.0-late\r\n"
            proc.stdin.close()
            assert proc.wait(timeout=30) == 0
    finally:
        late.close()
    help_lines = fdrecv(["-h"]).stdout.decode().splitlines()
    assert "                </dev/null, an HTTP proxy (squid, tinyproxy) ends the tunnel before a server" in help_lines
    assert "  sleep 5 | ncfd-fdrecv ncfd -F -X connect -x proxy.example:3128 example.com 22" in help_lines


def test_relay_moves_megabytes_both_ways(banner_target: peers.Target) -> None:
    require("nc.openbsd")
    data = os.urandom(4 << 20)
    r = fdrecv(["nc.openbsd", "-F", "127.0.0.1", str(banner_target.port)], input=data)
    assert r.returncode == 0, r.stderr
    assert r.stdout == banner_target.banner + data


def test_verbose_narrates_the_handoff(banner_target: peers.Target) -> None:
    require("nc.openbsd")
    r = fdrecv(["-v", "nc.openbsd", "-F", "127.0.0.1", str(banner_target.port)])
    assert r.returncode == 0, r.stderr
    lines = r.stderr.decode().splitlines()
    assert lines[0].startswith(f"{PREFIX}started nc.openbsd, pid ")
    # nc passes the socket still non-blocking (openbsd-nc.md §3); -v says so.
    assert lines[1].startswith(f"{PREFIX}received after ")
    assert lines[1].endswith(f" -> 127.0.0.1:{banner_target.port}, non-blocking")
    assert ": TCP/IPv4 socket 127.0.0.1:" in lines[1]
    assert lines[2].startswith(f"{PREFIX}nc.openbsd exited with status 0 after ")
    assert lines[3:] == [f"{PREFIX}relaying stdin/stdout", f"{PREFIX}the connection ended"]


def test_as_a_plain_proxy_command_for_ssh(sshd: peers.Sshd, dante: peers.Proxy) -> None:
    """Relay mode is an nc: ssh without ProxyUseFdpass logs in through it."""
    dialer = f"{ncfd_command()} -F -x {dante.address} %h %p"
    argv = sshd.ssh_argv(f"{sys.executable} -m ncfd.fdrecv {dialer}", "echo", "relayed")
    argv[argv.index("ProxyUseFdpass=yes")] = "ProxyUseFdpass=no"
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "relayed\n"


# --- exec mode ------------------------------------------------------------------------------

# Reads the banner on stdin, sends it back on stdout, reads the echo: both are the socket.
SH_ROUND_TRIP = 'read banner; echo "$banner again"; read echo; echo "$banner|$echo|$$" >&2; exit 7'


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("dialer", DIALERS)
def test_exec(request: pytest.FixtureRequest, banner_target: peers.Target, dialer: str, route: str) -> None:
    argv = [*dialer_argv(dialer), "-F", *proxy_args(request, route), "127.0.0.1", str(banner_target.port)]
    proc = subprocess.Popen(
        [*FDRECV, "--exec", "sh", "-c", SH_ROUND_TRIP, "--", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = proc.communicate(timeout=30)
    # PROG's status is ours, and its pid: it replaced ncfd-fdrecv rather than running under it.
    assert proc.returncode == 7, err
    assert out == b""
    assert err.decode() == f"HELLO-TARGET|HELLO-TARGET again|{proc.pid}\n"


EXEC_PROBE = r"""
import os, socket, stat, sys
sock = socket.socket(fileno=0)
same = os.fstat(0).st_ino == os.fstat(1).st_ino
print(stat.S_ISSOCK(os.fstat(0).st_mode), same, os.get_blocking(0), sock.getpeername()[1], file=sys.stderr)
print(sys.stdin.readline().strip(), file=sys.stderr)
"""


@pytest.mark.parametrize("dialer", DIALERS)
def test_exec_gets_a_blocking_socket_on_stdin_and_stdout(banner_target: peers.Target, dialer: str) -> None:
    # nc -F passes the socket non-blocking; a program expects a blocking stdin.
    argv = [*dialer_argv(dialer), "-F", "127.0.0.1", str(banner_target.port)]
    r = fdrecv(["--exec", sys.executable, "-c", EXEC_PROBE, "--", *argv])
    assert r.returncode == 0, r.stderr
    assert r.stderr.decode() == f"True True True {banner_target.port}\nHELLO-TARGET\n"


# --- dialers that fail ----------------------------------------------------------------------


def test_nc_fails_to_connect() -> None:
    require("nc.openbsd")
    closed = peers.free_port()
    r = fdrecv(["nc.openbsd", "-F", "127.0.0.1", str(closed)])
    assert r.returncode == 1 and r.stdout == b""
    # nc says nothing without -v; we say what ssh could only call "did not pass back a connection".
    assert one_error_line(r) == "nc.openbsd exited with status 1 without passing a descriptor"


def test_nc_without_f_is_told_apart_and_stopped(banner_target: peers.Target, tmp_path: Path) -> None:
    """A relaying nc sends the banner and keeps running: we count what came, stop it, and fail fast."""
    require("nc.openbsd")
    start = time.monotonic()
    r, error = fdrecv_watching_the_dialer(["-w", "20", "nc.openbsd", "127.0.0.1", str(banner_target.port)], tmp_path)
    assert time.monotonic() - start < 10
    assert r.returncode == 1
    assert error == f'nc.openbsd sent 13 bytes but no descriptor: {HINT} It sent "HELLO-TARGET\\n"'
