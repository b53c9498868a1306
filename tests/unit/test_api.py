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
import socket
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import ncfd
from tests.support import peers
from tests.support.api import LOOKUP, SLOW_PAC, SLOW_RESOLVER, WAIT
from tests.support.fakeservers import FAKE_TARGET_BANNER, FakeServer, Session, silent


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


# --- work that outlives its caller ------------------------------------------------------------


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
        s.send(b"HTTP/1.1 200 Connection established\r\n\r\n" + FAKE_TARGET_BANNER)
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
    from ncfd.deadline import Deadline, call_within

    pac, application = 8 << 20, 512 << 10
    sizes: dict[int, list[int]] = {pac: [], application: []}

    def helpers(i: int) -> None:
        for n in range(1000):
            stack = pac if (i + n) % 2 else 0
            sizes[stack or application].append(call_within(Deadline(WAIT), this_threads_stack, "probing", stack=stack))

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


def test_connect_check_and_connect_async_build_their_request_from_the_same_arguments() -> None:
    """Twins: connect() and check() take the same keywords, and the one function that builds the
    Request of all three (connect_async binds connect's) takes them all, as they are typed."""
    import inspect

    from ncfd import api

    def shown(call: Any) -> list[tuple[str, object]]:
        return [(p.name, p.annotation) for p in inspect.signature(call).parameters.values()]

    assert shown(api._request) == shown(api.connect) == shown(api.check)
    defaults = [[p.default for p in inspect.signature(call).parameters.values()] for call in (api.connect, api.check)]
    assert defaults[0] == defaults[1]


def test_header_values_are_trimmed_as_on_the_command_line() -> None:
    """h11 refuses a value with a space at either end, and its message would show the value."""
    from tests.support.fakeservers import FAKE_TARGET_BANNER, FakeServer, http_proxy

    with FakeServer(http_proxy(b"HTTP/1.1 200 OK\r\n\r\n" + FAKE_TARGET_BANNER)) as proxy:
        sock = ncfd.connect("h", 22, proxy=f"http://127.0.0.1:{proxy.port}", headers={"X-Api-Token": " s3cr3t \t"})
        sock.close()
        assert b"\r\nX-Api-Token: s3cr3t\r\n" in proxy.settled()[0].received
