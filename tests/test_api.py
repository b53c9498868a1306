"""The Python face, ncfd.connect(): paramiko and asyncssh from PyPI logging in to the test sshd with
sock= through squid, dante, a PAC, a chain and an HTTPS proxy; many threads at once; deadlines that
hold in any thread against silent and drip-feeding proxies; the exceptions a caller tells apart;
no signal handler touched; no work outliving its caller; connect_async cancelled and bounded on its
own; and the stack size each of ncfd's threads starts with."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ncfd
from tests.support import peers
from tests.support.fakeservers import BANNER, FakeServer, Session, silent

WAIT = 60.0


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


def test_eight_threads_against_a_silent_proxy_all_time_out_in_time() -> None:
    errors: list[BaseException] = []
    with FakeServer(silent) as mute:

        def one() -> None:
            try:
                ncfd.connect("example.com", 22, proxy=f"http://{mute.host}:{mute.port}", timeout=2)
            except BaseException as e:
                errors.append(e)

        start = time.monotonic()
        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT)
        elapsed = time.monotonic() - start
    assert len(errors) == 8 and all(isinstance(e, ncfd.TimedOut) for e in errors), errors
    assert str(errors[0]).startswith(f"timed out after 2s waiting for HTTP proxy {mute.host}:{mute.port}")
    assert ncfd.TimedOut.exit_code == 7
    assert elapsed < 2 + 8


def test_a_drip_fed_reply_is_cut_at_the_deadline() -> None:
    def drip(s: Session) -> None:
        s.recv_until(b"\r\n\r\n")
        for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: y\r\n" * 1000:
            s.send(bytes([byte]))
            time.sleep(0.2)

    outcome: list[object] = []
    with FakeServer(drip) as p:

        def dial() -> None:  # in a thread: a deadline that does not hold fails the test, not hangs it
            try:
                outcome.append(ncfd.connect("example.com", 22, proxy=f"http://{p.host}:{p.port}", timeout=2))
            except BaseException as e:
                outcome.append(e)

        start = time.monotonic()
        thread = threading.Thread(target=dial, daemon=True)
        thread.start()
        thread.join(2 + 10)
        assert not thread.is_alive(), "connect(timeout=2) still running after 12s"
        assert time.monotonic() - start < 2 + 5
    assert isinstance(outcome[0], ncfd.TimedOut), outcome
    assert 'it had sent "HTTP/1.1 ' in str(outcome[0])  # bytes kept coming; the deadline held


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


def test_pac_optional_connects_directly_when_the_pac_server_refuses(
    banner_target: peers.Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no cached copy
    pac = f"http://127.0.0.1:{peers.free_port()}/proxy.pac"
    with ncfd.connect(peers.HOST, banner_target.port, pac=pac, pac_optional=True, timeout=WAIT) as sock:
        sock.settimeout(WAIT)
        assert sock.recv(len(banner_target.banner), socket.MSG_WAITALL) == banner_target.banner
    with pytest.raises(ncfd.PacError):
        ncfd.connect(peers.HOST, banner_target.port, pac=pac, timeout=WAIT)
    with pytest.raises(ncfd.UsageError, match="pac_optional goes with pac"):
        ncfd.connect(peers.HOST, banner_target.port, pac_optional=True)


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


def test_hostile_input_raises_an_ncfd_error_never_another_exception(tmp_path: Path) -> None:
    pac = tmp_path / "utf16.pac"
    pac.write_bytes('function FindProxyForURL(u, h) { return "DIRECT"; }'.encode("utf-16-le"))  # no BOM
    with pytest.raises(ncfd.PacError, match="contains a NUL character"):
        ncfd.connect("h", 22, pac=str(pac), timeout=5)

    def malformed_ntlm(s: Session) -> None:
        for token in (b"", b" TlRMTQ=="):  # "NTLM": four bytes where a CHALLENGE message belongs
            s.recv_until(b"\r\n\r\n")
            s.send(b"HTTP/1.1 407 Auth\r\nProxy-Authenticate: NTLM" + token + b"\r\nContent-Length: 0\r\n\r\n")
        silent(s)

    with FakeServer(malformed_ntlm) as p, pytest.raises(ncfd.AuthFailed, match="sent a malformed challenge"):
        ncfd.connect("h", 22, proxy=f"http://{p.host}:{p.port}", user="alice", password="s3cret", timeout=5)


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
    assert sock.recv(len(BANNER) + 100, socket.MSG_PEEK)
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


# --- work that outlives its caller ------------------------------------------------------------


SLOW_PAC = """function FindProxyForURL(u, h) {
    for (var i = 0; i < 40; i++) dnsResolve("n" + i + ".slow.test");
    return "DIRECT";
}"""
LOOKUP = 2.0  # seconds each name of SLOW_PAC takes to fail, as with a DNS server that never answers

SLOW_RESOLVER = f"""
import socket, threading, time

real_getaddrinfo = socket.getaddrinfo
in_flight, started = [0], [0]
counting = threading.Lock()

def slow_getaddrinfo(host, *args, **kwargs):
    if not (isinstance(host, str) and host.endswith(".slow.test")):
        return real_getaddrinfo(host, *args, **kwargs)
    with counting:
        in_flight[0] += 1
        started[0] += 1
    try:
        time.sleep({LOOKUP})
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    finally:
        with counting:
            in_flight[0] -= 1

socket.getaddrinfo = slow_getaddrinfo
"""


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_pac_lookups_stop_at_the_callers_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each call ends at its deadline, and its helper thread (an 8 MiB stack and a JavaScript
    engine) ends with the one lookup it had in flight, not after the 32 names the PAC asks for."""
    resolver: dict[str, Any] = {}
    exec(SLOW_RESOLVER, resolver)
    monkeypatch.setattr(socket, "getaddrinfo", resolver["slow_getaddrinfo"])
    pac = tmp_path / "slow.pac"
    pac.write_text(SLOW_PAC)
    before = os_threads()
    calls = 5
    for _ in range(calls):
        start = time.monotonic()
        with pytest.raises(ncfd.TimedOut, match=r"^timed out after 1s evaluating PAC "):
            ncfd.connect("127.0.0.1", 9, pac=str(pac), timeout=1)
        assert time.monotonic() - start < 1 + 5
    give_up = time.monotonic() + LOOKUP + 5
    while (resolver["in_flight"][0] or os_threads() > before) and time.monotonic() < give_up:
        time.sleep(0.05)
    assert resolver["in_flight"] == [0], "lookups went on after their callers had gone"
    assert os_threads() <= before, "helper threads outlived their callers"
    assert resolver["started"][0] <= calls  # the one each had in flight at its deadline, no more


def test_under_a_memory_limit_the_api_raises_only_its_own_errors(tmp_path: Path) -> None:
    """Under an address-space limit, abandoned helpers used to pile up until no thread could start,
    and the API then raised a bare RuntimeError. Now they end in time; and where a thread cannot
    start, that is an NcfdError too."""
    pac = tmp_path / "slow.pac"
    pac.write_text(SLOW_PAC)
    script = SLOW_RESOLVER + textwrap.dedent(f"""
        import resource, sys, time
        import ncfd

        def vm_size():
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) << 10 for line in status if line.startswith("VmSize:"))

        def call():
            try:
                ncfd.connect("127.0.0.1", 9, pac={str(pac)!r}, timeout=0.5)
            except ncfd.NcfdError as e:
                return type(e).__name__
            except BaseException as e:
                return "escaped " + type(e).__name__ + ": " + str(e)
            return "connected"

        call()  # everything imported and warm
        time.sleep({LOOKUP} + 1)
        # Room for a few helpers' 8 MiB stacks, not for a dozen.
        resource.setrlimit(resource.RLIMIT_AS, (vm_size() + (40 << 20), resource.RLIM_INFINITY))
        print("\\n".join(call() for _ in range(12)))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 0, r.stderr
    outcomes = r.stdout.split("\n")[:-1]
    assert len(outcomes) == 12
    assert not [o for o in outcomes if not o.startswith(("TimedOut", "NcfdError"))], outcomes


# --- connect_async: its own thread, its own deadline, cancellable ---------------------------------


def connect_async_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ncfd connect_async"]


def test_cancelling_connect_async_stops_the_attempt_and_frees_the_loop() -> None:
    """Ten calls to a silent proxy, cancelled after 0.5 s of their 20: the connections are closed
    at once, the loop's default executor is free (the API never used it), and asyncio.run() does
    not wait for the 20 s."""
    closed: list[float] = []

    def silent_until_closed(s: Session) -> None:
        silent(s)
        closed.append(time.monotonic())

    async def main(proxy: str) -> float:
        calls = [
            asyncio.ensure_future(ncfd.connect_async("example.com", 22, proxy=proxy, timeout=20)) for _ in range(10)
        ]
        await asyncio.sleep(0.5)
        for call in calls:
            call.cancel()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results), results
        start = time.monotonic()
        await asyncio.get_running_loop().getaddrinfo("127.0.0.1", 22)  # in the default executor
        return time.monotonic() - start

    with FakeServer(silent_until_closed) as mute:
        start = time.monotonic()
        lookup = asyncio.run(main(f"http://{mute.host}:{mute.port}"))
        elapsed = time.monotonic() - start
        for thread in connect_async_threads():
            thread.join(10)
        give_up = time.monotonic() + 10
        while len(closed) < 10 and time.monotonic() < give_up:
            time.sleep(0.05)
    assert lookup < 5, "the default executor was busy"
    assert elapsed < 0.5 + 5, "asyncio.run() waited for the cancelled calls"
    assert connect_async_threads() == []
    assert len(closed) == 10 and max(closed) - start < 0.5 + 5, "a cancelled attempt kept its connection"


def test_a_cancelled_call_tries_no_other_route(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled is not a route that failed: the next one the PAC gives is not tried."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with FakeServer(silent) as first, FakeServer(silent) as second:
        pac = tmp_path / "two.pac"
        routes = f"PROXY {first.host}:{first.port}; PROXY {second.host}:{second.port}"
        pac.write_text(f'function FindProxyForURL(u, h) {{ return "{routes}"; }}')

        async def main() -> None:
            call = asyncio.ensure_future(ncfd.connect_async("example.com", 22, pac=str(pac), timeout=4))
            await asyncio.sleep(0.5)
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call

        asyncio.run(main())
        time.sleep(2 + 1)  # past the first route's share of the 4 s
        assert len(first.settled()) == 1
        assert second.settled() == []
    # Nor is the first route dead: it was cut off by the cancellation, not found wanting.
    assert not (tmp_path / "cache" / "ncfd" / "dead-proxies").exists()


def test_concurrent_connect_async_calls_each_have_their_own_deadline() -> None:
    """The deadline starts at the call, not when a worker of a small default executor is free."""

    async def main(proxy: str) -> list[BaseException | socket.socket]:
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=2))
        calls = [ncfd.connect_async("example.com", 22, proxy=proxy, timeout=3) for _ in range(14)]
        return await asyncio.gather(*calls, return_exceptions=True)

    with FakeServer(silent) as mute:
        start = time.monotonic()
        results = asyncio.run(main(f"http://{mute.host}:{mute.port}"))
        elapsed = time.monotonic() - start
    assert all(isinstance(r, ncfd.TimedOut) for r in results), results
    assert all(str(r).startswith(f"timed out after 3s waiting for HTTP proxy {mute.host}:{mute.port}") for r in results)
    assert elapsed < 3 + 4  # in 2-thread batches, the last would end at 21 s


def test_a_cancelled_call_that_would_have_succeeded_leaks_no_socket() -> None:
    """The proxy answers 200 a second after the call was cancelled: nobody is left to take the
    socket, and nothing may be left for the garbage collector to close."""

    def slow_yes(s: Session) -> None:
        s.recv_until(b"\r\n\r\n")
        time.sleep(1)
        s.send(b"HTTP/1.1 200 Connection established\r\n\r\n" + BANNER)
        while s.conn.recv(65536):
            pass

    async def main(proxy: str) -> None:
        call = asyncio.ensure_future(ncfd.connect_async("example.com", 22, proxy=proxy, timeout=20))
        await asyncio.sleep(0.3)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
        await asyncio.sleep(2)  # the proxy has answered

    with FakeServer(slow_yes) as p, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(main(f"http://{p.host}:{p.port}"))
        for thread in connect_async_threads():
            thread.join(10)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# --- the stack size ncfd's threads start with ---------------------------------------------------


def this_threads_stack() -> int:
    import ctypes

    libc = ctypes.CDLL(None)
    libc.pthread_self.restype = ctypes.c_ulong
    attr = ctypes.create_string_buffer(256)  # a pthread_attr_t, whatever its size here
    assert libc.pthread_getattr_np(ctypes.c_ulong(libc.pthread_self()), attr) == 0
    size = ctypes.c_size_t()
    libc.pthread_attr_getstacksize(attr, ctypes.byref(size))
    libc.pthread_attr_destroy(attr)
    return size.value


def test_each_helper_thread_gets_its_own_stack_size_whatever_runs_alongside() -> None:
    """The stack size is process-wide, read when a thread starts. PAC helpers (8 MiB) and other
    helpers (the application's size), started from many threads at once with a thread switch at
    nearly every bytecode, each get their own; and the application's size is left as it was."""
    from ncfd.deadline import Deadline, bounded

    pac, application = 8 << 20, 512 << 10
    sizes: dict[int, list[int]] = {pac: [], application: []}

    def helpers(i: int) -> None:
        for n in range(1000):
            stack = pac if (i + n) % 2 else 0
            sizes[stack or application].append(bounded(Deadline(WAIT), this_threads_stack, "probing", stack=stack))

    interval = sys.getswitchinterval()
    threading.stack_size(application)
    sys.setswitchinterval(1e-6)
    try:
        callers = [threading.Thread(target=helpers, args=(i,)) for i in range(8)]
        for t in callers:
            t.start()
        for t in callers:
            t.join(WAIT)
        left = threading.stack_size(0)
    finally:
        sys.setswitchinterval(interval)
        threading.stack_size(0)
    assert left == application
    assert set(sizes[pac]) == {pac} and len(sizes[pac]) == 4000
    assert set(sizes[application]) == {application} and len(sizes[application]) == 4000


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"proxy": 123}, "proxy must be a string or a list of strings"),
        ({"proxy": ["http://u:hunter2@p:3128", 5]}, "proxy must be a string or a list of strings"),
        ({"proxy": "http://p:3128", "auth_hosts": 123}, "auth_hosts must be a string or a list of strings"),
        ({"proxy": "http://p:3128", "auth_hosts": [b"x"]}, "auth_hosts must be a string or a list of strings"),
        ({"proxy": "http://p:3128", "cacert": 123}, "cacert must be a string, not int"),
        ({"proxy": "https://p", "cert": Path("c.pem")}, "cert must be a string, not PosixPath"),
        ({"proxy": "http://p:3128", "service_name": 1}, "service_name must be a string, not int"),
        ({"proxy": "https://p", "cert": "c.pem", "key_passphrase": 1},
         "key_passphrase must be a string or a callable returning one, not int"),
        ({"proxy": "http://p:3128", "user": "u", "password": b"hunter2"},
         "password must be a string or a callable returning one, not bytes"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("call", [ncfd.connect, ncfd.check])
def test_arguments_of_the_wrong_type_are_usage_errors_showing_no_value(
    call: Any, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ncfd.UsageError) as raised:
        call("h", 22, **arguments)
    assert str(raised.value) == message
    assert "hunter2" not in str(raised.value)


def test_header_values_are_trimmed_as_on_the_command_line() -> None:
    """h11 refuses a value with a space at either end, and its message would show the value."""
    from tests.support.fakeservers import BANNER, FakeServer, http_proxy

    with FakeServer(http_proxy(b"HTTP/1.1 200 OK\r\n\r\n" + BANNER)) as proxy:
        sock = ncfd.connect("h", 22, proxy=f"http://127.0.0.1:{proxy.port}", headers={"X-Api-Token": " s3cr3t \t"})
        sock.close()
        assert b"\r\nX-Api-Token: s3cr3t\r\n" in proxy.settled()[0].received
