"""The fixtures work: the reference nc.openbsd gets through each real server."""

from __future__ import annotations

import base64
import socket
import struct
import subprocess

import pytest

from tests.support import peers

NC = "nc.openbsd"


@pytest.fixture(autouse=True)
def _nc() -> None:
    peers.require(NC)


def nc_through(proxy: peers.Proxy, protocol: str, target: peers.Target) -> bytes:
    """What target answers to ping through nc -X protocol -x proxy: banner and
    echo. Stdin stays open, as squid and microsocks drop the tunnel on EOF."""
    argv = [NC, "-w", "5", "-X", protocol, "-x", proxy.address, target.host, str(target.port)]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as nc:
        assert nc.stdin is not None and nc.stdout is not None
        nc.stdin.write(b"ping\n")
        nc.stdin.flush()
        # If nothing comes, -w 5 makes nc exit and read() return short.
        received = nc.stdout.read(len(peers.TARGET_BANNER + b"ping\n"))
        nc.kill()
    return received


def http_connect_status(proxy: peers.Proxy, target: peers.Target, credentials: str | None) -> bytes:
    """Status line of a CONNECT to target through proxy, Basic auth if given."""
    request = f"CONNECT {target.host}:{target.port} HTTP/1.1\r\n"
    if credentials is not None:
        token = base64.b64encode(credentials.encode()).decode()
        request += f"Proxy-Authorization: Basic {token}\r\n"
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
        sock.sendall(request.encode() + b"\r\n")
        return sock.makefile("rb").readline().rstrip()


def test_ssh_direct_with_fdpass(sshd: peers.Sshd) -> None:
    argv = sshd.ssh_argv(f"{NC} -F %h %p", "echo", "hello")
    result = subprocess.run(argv, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello\n"


def test_ssh_via_localhost_name(sshd: peers.Sshd) -> None:
    argv = sshd.ssh_argv(f"{NC} -F %h %p", "echo", "hello", host="localhost")
    result = subprocess.run(argv, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello\n"


@pytest.mark.parametrize(
    ("fixture", "protocol"),
    [
        ("squid", "connect"),
        ("tinyproxy", "connect"),
        ("dante", "5"),
        ("dante", "4"),
        ("microsocks", "5"),
        ("ssh_socks", "5"),
        ("ssh_socks", "4"),
    ],
)
def test_nc_through_proxy(
    request: pytest.FixtureRequest,
    banner_target: peers.Target,
    fixture: str,
    protocol: str,
) -> None:
    proxy = request.getfixturevalue(fixture)
    assert nc_through(proxy, protocol, banner_target) == peers.TARGET_BANNER + b"ping\n"


def test_ssh_socks_speaks_socks4a(ssh_socks: peers.Proxy, banner_target: peers.Target) -> None:
    # nc.openbsd has no -X 4A: speak it by hand, 0.0.0.1 meaning "name follows".
    request = struct.pack(">BBH4s", 4, 1, banner_target.port, bytes([0, 0, 0, 1]))
    with socket.create_connection((ssh_socks.host, ssh_socks.port), timeout=5) as sock:
        sock.sendall(request + b"\0localhost\0")
        replies = sock.makefile("rb")
        assert replies.read(8)[:2] == b"\x00\x5a"  # request granted
        assert replies.read(len(peers.TARGET_BANNER)) == peers.TARGET_BANNER


def test_ssh_through_squid_with_fdpass(sshd: peers.Sshd, squid: peers.Proxy) -> None:
    argv = sshd.ssh_argv(f"{NC} -F -X connect -x {squid.address} %h %p", "echo", "hello")
    result = subprocess.run(argv, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello\n"


@pytest.mark.parametrize("fixture", ["squid_auth", "tinyproxy_auth"])
def test_http_proxy_basic_auth(request: pytest.FixtureRequest, banner_target: peers.Target, fixture: str) -> None:
    proxy = request.getfixturevalue(fixture)("alice", "s3cret")
    assert http_connect_status(proxy, banner_target, None).split()[1] == b"407"
    assert http_connect_status(proxy, banner_target, "alice:wrong").split()[1] in (
        b"401",  # tinyproxy's answer to wrong credentials
        b"407",
    )
    assert http_connect_status(proxy, banner_target, "alice:s3cret").split()[1] == b"200"


def test_microsocks_password_auth(microsocks_auth: peers.ProxyFactory, banner_target: peers.Target) -> None:
    proxy = microsocks_auth("alice", "s3cret")
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
        replies = sock.makefile("rb")
        sock.sendall(b"\x05\x01\x02")  # offer username/password only
        assert replies.read(2) == b"\x05\x02"
        sock.sendall(b"\x01\x05alice\x06s3cret")
        assert replies.read(2) == b"\x01\x00"
        address = socket.inet_aton(banner_target.host) + struct.pack(">H", banner_target.port)
        sock.sendall(b"\x05\x01\x00\x01" + address)  # CONNECT to an IPv4 address
        assert replies.read(10)[:2] == b"\x05\x00"
        assert replies.read(len(peers.TARGET_BANNER)) == peers.TARGET_BANNER
