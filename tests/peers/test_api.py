"""The Python face, ncfd.connect(): paramiko and asyncssh from PyPI logging in to the test sshd with
sock= through squid, dante, a PAC, a chain and an HTTPS proxy; many threads at once; deadlines that
hold in any thread against silent and drip-feeding proxies; the exceptions a caller tells apart;
no signal handler touched; no work outliving its caller; connect_async cancelled and bounded on its
own; and the stack size each of ncfd's threads starts with."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import ncfd
from tests.support import peers
from tests.support.api import WAIT
from tests.support.fakeservers import FAKE_TARGET_BANNER, FakeServer, silent


def paramiko_login(sshd: peers.Sshd, sock: socket.socket) -> str:
    import paramiko

    client = paramiko.SSHClient()
    client.load_host_keys(str(sshd.known_hosts))
    with contextlib.closing(client):
        client.connect(peers.HOST, port=sshd.port, username=sshd.user, key_filename=str(sshd.client_key), sock=sock,
                       look_for_keys=False, allow_agent=False, timeout=WAIT)  # fmt: skip
        _, stdout, _ = client.exec_command("echo in", timeout=WAIT)
        return str(stdout.read().decode())


@pytest.fixture
def pac_url(web: peers.WebServer, squid: peers.Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = web.root / "api.pac"
    path.write_text(
        f'function FindProxyForURL(u, h) {{ return "PROXY 127.0.0.1:{peers.free_port()}; PROXY {squid.address}"; }}'
    )
    path.chmod(0o644)
    return web.url("api.pac")


@pytest.mark.parametrize("route", ["squid-basic", "dante", "pac", "chain", "https"])
def test_paramiko_logs_in_with_sock_from_ncfd(
    request: pytest.FixtureRequest, sshd: peers.Sshd, squid_auth: peers.ProxyFactory, route: str
) -> None:
    if route == "squid-basic":
        proxy = squid_auth("alice", "s3cret", schemes=("basic",))
        sock = ncfd.connect(peers.HOST, sshd.port, proxy=f"http://{proxy.address}", user="alice", password="s3cret")
    elif route == "dante":
        dante: peers.Proxy = request.getfixturevalue("dante")
        sock = ncfd.connect(peers.HOST, sshd.port, proxy=dante.address, protocol="5")
    elif route == "pac":
        sock = ncfd.connect(peers.HOST, sshd.port, pac=request.getfixturevalue("pac_url"))
    elif route == "chain":
        dante, squid = request.getfixturevalue("dante"), request.getfixturevalue("squid")
        sock = ncfd.connect(peers.HOST, sshd.port, proxy=[f"socks5h://{dante.address}", f"http://{squid.address}"])
    else:
        https: peers.TlsProxy = request.getfixturevalue("https_proxy")
        sock = ncfd.connect(peers.HOST, sshd.port, proxy=f"https://localhost:{https.port}", cacert=str(https.cafile))
        assert sock.family == socket.AF_UNIX  # the end of a socketpair a thread relays to the TLS session
    assert sock.gettimeout() is None
    assert paramiko_login(sshd, sock) == "in\n"


def test_asyncssh_logs_in_with_sock_from_ncfd(sshd: peers.Sshd, squid: peers.Proxy, dante: peers.Proxy) -> None:
    import asyncssh

    async def login(sock: socket.socket) -> str:
        keys, known = [str(sshd.client_key)], str(sshd.known_hosts)
        async with asyncssh.connect(
            peers.HOST, sshd.port, sock=sock, username=sshd.user, client_keys=keys, known_hosts=known
        ) as conn:
            result = await conn.run("echo in", check=True)
            return str(result.stdout)

    async def main() -> list[str]:
        through_squid = await ncfd.connect_async(peers.HOST, sshd.port, proxy=f"http://{squid.address}")
        through_dante = await ncfd.connect_async(peers.HOST, sshd.port, proxy=f"socks5h://{dante.address}")
        return [await login(through_squid), await login(through_dante)]

    assert asyncio.run(main()) == ["in\n", "in\n"]


def test_the_socket_is_positioned_after_the_proxys_reply(squid: peers.Proxy, banner_target: peers.Target) -> None:
    with ncfd.connect(peers.HOST, banner_target.port, proxy=f"http://{squid.address}") as sock:
        sock.settimeout(WAIT)
        assert sock.recv(len(banner_target.banner), socket.MSG_WAITALL) == banner_target.banner


def test_sixteen_threads_at_once_through_a_real_proxy(squid: peers.Proxy, banner_target: peers.Target) -> None:
    results: list[bytes | BaseException] = []

    def one() -> None:
        try:
            with ncfd.connect(peers.HOST, banner_target.port, proxy=f"http://{squid.address}", timeout=WAIT) as sock:
                sock.settimeout(WAIT)
                results.append(sock.recv(len(banner_target.banner), socket.MSG_WAITALL))
        except BaseException as e:
            results.append(e)

    threads = [threading.Thread(target=one) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert results == [banner_target.banner] * 16


def test_each_failure_is_its_own_kind(squid_auth: peers.ProxyFactory, banner_target: peers.Target) -> None:
    proxy = squid_auth("alice", "s3cret", schemes=("basic",))
    with pytest.raises(ncfd.AuthFailed) as auth:
        ncfd.connect(peers.HOST, banner_target.port, proxy=f"http://{proxy.address}", user="alice", password="wrong")
    assert str(auth.value) == f"proxy authentication failed for alice at HTTP proxy {proxy.address}"
    assert auth.value.exit_code == 6 and isinstance(auth.value, ncfd.ProxyError)
    with pytest.raises(ncfd.ConnectFailed) as refused:
        ncfd.connect(peers.HOST, banner_target.port, proxy=f"http://127.0.0.1:{peers.free_port()}")
    assert refused.value.exit_code == 4
    with pytest.raises(ncfd.ResolveError):
        ncfd.connect(peers.HOST, banner_target.port, proxy="http://no-such-proxy.invalid")
    with pytest.raises(ncfd.UsageError):
        ncfd.connect(peers.HOST, banner_target.port, proxy="p:1", protocol="http")
    with pytest.raises(ncfd.UsageError):
        ncfd.connect(peers.HOST, banner_target.port, proxy="http://p", pac="http://p/x.pac")
    assert all(issubclass(kind, ncfd.NcfdError) for kind in (ncfd.TimedOut, ncfd.PacError, ncfd.ProxyError))


def test_a_proxy_wanting_a_password_is_told_in_the_apis_words(
    squid_auth: peers.ProxyFactory, microsocks_auth: peers.ProxyFactory, banner_target: peers.Target
) -> None:
    """Not -P, a command-line option: user= without password= says that no password was given."""
    http = squid_auth("alice", "s3cret", schemes=("basic",))
    socks5 = microsocks_auth("alice", "s3cret")
    refusal = f'HTTP proxy {http.address} refused CONNECT 127.0.0.1:{banner_target.port}: "HTTP/1.1 407 Proxy'
    refusal += ' Authentication Required"'
    methods = f"SOCKS5 proxy {socks5.address} accepts none of our authentication methods (answered 05 ff)"
    cases = [
        (f"http://{http.address}", "alice", f"{refusal}: it wants a password, and none was given for alice"),
        (f"http://{http.address}", None, f"{refusal}: it wants authentication (user= and password=)"),
        (f"socks5h://{socks5.address}", "alice", f"{methods}: it wants a password, and none was given for alice"),
        (f"socks5h://{socks5.address}", None, f"{methods}: it wants a user and password (user= and password=)"),
    ]
    for proxy, user, message in cases:
        with pytest.raises(ncfd.AuthFailed) as failed:
            ncfd.connect(peers.HOST, banner_target.port, proxy=proxy, user=user, timeout=20)
        assert str(failed.value) == message


def test_the_password_is_asked_only_when_a_proxy_wants_one(
    squid: peers.Proxy, squid_auth: peers.ProxyFactory, banner_target: peers.Target
) -> None:
    asked: list[str] = []

    def password() -> str:
        asked.append("x")
        return "s3cret"

    ncfd.connect(
        peers.HOST, banner_target.port, proxy=f"http://{squid.address}", user="alice", password=password
    ).close()
    assert asked == []
    proxy = squid_auth("alice", "s3cret", schemes=("digest",))
    ncfd.connect(
        peers.HOST, banner_target.port, proxy=f"http://{proxy.address}", user="alice", password=password
    ).close()
    assert asked == ["x"]


def every_handler() -> dict[int, object]:
    return {s: signal.getsignal(s) for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)}


@pytest.fixture
def https(https_proxy: peers.TlsProxy) -> Iterator[peers.TlsProxy]:
    yield https_proxy


def test_no_signal_handler_is_touched(squid: peers.Proxy, https: peers.TlsProxy, banner_target: peers.Target) -> None:
    before = every_handler()
    ncfd.connect(peers.HOST, banner_target.port, proxy=f"http://{squid.address}").close()
    ncfd.connect(
        peers.HOST, banner_target.port, proxy=f"https://localhost:{https.port}", cacert=str(https.cafile)
    ).close()
    with FakeServer(silent) as mute, contextlib.suppress(ncfd.TimedOut):
        ncfd.connect("example.com", 22, proxy=f"http://{mute.host}:{mute.port}", timeout=0.5)
    assert every_handler() == before


def test_the_https_relay_thread_ends_when_the_socket_is_closed(
    https: peers.TlsProxy, banner_target: peers.Target
) -> None:
    sock = ncfd.connect(
        peers.HOST, banner_target.port, proxy=f"https://localhost:{https.port}", cacert=str(https.cafile)
    )
    sock.settimeout(WAIT)
    assert sock.recv(len(FAKE_TARGET_BANNER) + 100, socket.MSG_PEEK)
    sock.sendall(b"ping\n")
    relays = [t for t in threading.enumerate() if t.name == "ncfd HTTPS relay"]
    assert relays
    sock.close()
    for relay in relays:
        relay.join(15)
        assert not relay.is_alive()


def test_fabric_runs_a_command_over_sock_from_ncfd(sshd: peers.Sshd, squid: peers.Proxy) -> None:
    import fabric

    sock = ncfd.connect(peers.HOST, sshd.port, proxy=f"http://{squid.address}")
    kwargs = {"sock": sock, "key_filename": str(sshd.client_key), "look_for_keys": False, "allow_agent": False}
    with fabric.Connection(peers.HOST, port=sshd.port, user=sshd.user, connect_kwargs=kwargs) as conn:
        conn.client.load_host_keys(str(sshd.known_hosts))
        assert conn.run("echo in", hide=True, in_stream=False).stdout == "in\n"
