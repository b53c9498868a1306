"""The relay through an HTTPS proxy (stunnel in front of tinyproxy): both directions at once
without stalling, every byte checked, with -F (the detached relay behind the socketpair) and in
relay mode; and no ncfd process left behind once the socket's holder closes or dies, even while
the proxy has stopped taking bytes."""

from __future__ import annotations

import hashlib
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import fakeservers, peers
from tests.support.fakeservers import FakeServer, Session, http_proxy
from tests.support.fdharness import NCFD, run_fdpass

SIZE = 64 << 20
DATA = random.Random(1337).randbytes(SIZE)
DIGEST = hashlib.sha256(DATA).hexdigest()
WAIT = 60.0  # seconds; on an idle machine the transfer takes about one


def echoes_then_closes(size: int) -> Callable[[Session], None]:
    """Echo size bytes as they come, then close: the end of the transfer ends the relay."""

    def handle(s: Session) -> None:
        left = size
        while left:
            chunk = s.conn.recv(min(left, 1 << 20))
            if not chunk:
                return
            s.conn.sendall(chunk)
            left -= len(chunk)

    return handle


def never_reads(s: Session) -> None:
    """Accept and sit: the proxy's writes to it fill the buffers, and then the proxy stops reading."""
    time.sleep(WAIT)


@pytest.fixture
def echo_target() -> Iterator[FakeServer]:
    with FakeServer(echoes_then_closes(SIZE)) as server:
        yield server


def https(proxy: peers.TlsProxy, target: FakeServer) -> list[str]:
    return ["-x", f"https://localhost:{proxy.port}", "--proxy-cacert", str(proxy.cafile), "127.0.0.1", str(target.port)]


def relays_alive(target: FakeServer) -> list[int]:
    """The pids of ncfd processes whose command line names target's port."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, NotADirectoryError, PermissionError):
            continue
        if b"ncfd" in b" ".join(cmdline) and str(target.port).encode() in cmdline:
            pids.append(int(entry))
    return pids


def wait_gone(target: FakeServer, within: float) -> list[int]:
    deadline = time.monotonic() + within
    while relays_alive(target) and time.monotonic() < deadline:
        time.sleep(0.05)
    return relays_alive(target)


# Small socket buffers to the proxy (-I, -O) make a stall that large buffers only make likely.
BUFFERS = [pytest.param([], id="default-buffers"), pytest.param(["-I", "65536", "-O", "65536"], id="small-buffers")]


@pytest.mark.parametrize("buffers", BUFFERS)
def test_both_ways_at_once_through_the_detached_relay(
    https_proxy: peers.TlsProxy, echo_target: FakeServer, buffers: list[str]
) -> None:
    r = run_fdpass([*NCFD, "-F", *buffers, *https(https_proxy, echo_target)])
    assert r.returncode == 0, r.stderr
    assert r.sock is not None
    sock = r.sock
    sock.settimeout(WAIT)
    errors: list[BaseException] = []

    def send() -> None:
        try:
            sock.sendall(DATA)
        except OSError as e:
            errors.append(e)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    digest, received = hashlib.sha256(), 0
    try:
        while received < SIZE:
            chunk = sock.recv(1 << 20)
            assert chunk, f"the relay ended after {received} of {SIZE} bytes"
            digest.update(chunk)
            received += len(chunk)
    except TimeoutError:
        pytest.fail(f"stalled after {received} of {SIZE} bytes echoed")
    sender.join(WAIT)
    assert not errors
    assert digest.hexdigest() == DIGEST
    assert sock.recv(1) == b""  # the target closed: the relay hands that on, and ends
    sock.close()
    assert wait_gone(echo_target, 10) == []


@pytest.mark.parametrize("buffers", BUFFERS)
def test_both_ways_at_once_in_relay_mode(
    https_proxy: peers.TlsProxy, echo_target: FakeServer, buffers: list[str]
) -> None:
    argv = [*NCFD, *buffers, *https(https_proxy, echo_target)]
    r = subprocess.run(argv, input=DATA, capture_output=True, timeout=WAIT * 2)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == SIZE and hashlib.sha256(r.stdout).hexdigest() == DIGEST


@pytest.fixture
def stuck_target() -> Iterator[FakeServer]:
    with FakeServer(never_reads) as server:
        yield server


def fill(sock: socket.socket) -> int:
    """Write until nothing more goes in: the relay is then stuck writing to the proxy."""
    sock.setblocking(False)
    sent, idle_since = 0, time.monotonic()
    while time.monotonic() - idle_since < 1:
        try:
            sent += sock.send(DATA[: 1 << 20])
            idle_since = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    return sent


def test_the_detached_relay_ends_when_the_holder_closes_while_the_proxy_takes_nothing(
    https_proxy: peers.TlsProxy, stuck_target: FakeServer
) -> None:
    r = run_fdpass([*NCFD, "-F", *https(https_proxy, stuck_target)])
    assert r.returncode == 0 and r.sock is not None, r.stderr
    assert len(relays_alive(stuck_target)) == 1
    assert fill(r.sock) > 0
    r.sock.close()
    assert wait_gone(stuck_target, 15) == []


def test_the_detached_relay_ends_when_the_holder_dies(https_proxy: peers.TlsProxy, stuck_target: FakeServer) -> None:
    r = run_fdpass([*NCFD, "-F", *https(https_proxy, stuck_target)])
    assert r.returncode == 0 and r.sock is not None, r.stderr
    # The holder is another process, writing until it blocks; then it is killed.
    writer = "import os, socket, sys; s = socket.socket(fileno=int(sys.argv[1])); s.sendall(b'x' * (64 << 20))"
    holder = subprocess.Popen([sys.executable, "-c", writer, str(r.sock.fileno())], pass_fds=[r.sock.fileno()])
    deadline = time.monotonic() + WAIT
    while select.select([], [r.sock], [], 0)[1]:  # until the way to the proxy is full
        assert time.monotonic() < deadline and holder.poll() is None, "the proxy took everything"
        time.sleep(0.05)
    r.sock.close()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert wait_gone(stuck_target, 15) == []


def test_a_tunnel_ended_at_the_targets_half_close_fails_the_relay_mode(https_proxy: peers.TlsProxy) -> None:
    """tinyproxy ends the tunnel (and stunnel the TLS session) when the target half-closes: the
    rest of stdin cannot be delivered, and ncfd says so instead of exiting 0."""

    def half_closes(s: Session) -> None:
        s.send(b"ready\n")
        s.conn.shutdown(socket.SHUT_WR)
        while s.conn.recv(1 << 20):
            pass

    with FakeServer(half_closes) as t:
        r = subprocess.run(
            [*NCFD, "-N", *https(https_proxy, t)], input=DATA[:20_000_000], capture_output=True, timeout=WAIT
        )
    assert r.returncode == 1  # r.stdout: "ready", or nothing if the proxy's reset came first
    assert r.stderr.decode() in {
        f"ncfd: relay to 127.0.0.1 port {t.port} failed: the connection was {how}\n"
        for how in ("closed before all of stdin was sent", "reset before the end of stdin")
    }


def test_the_banner_glued_to_the_reply_in_one_tls_record_stays_for_ssh(tmp_path: Path) -> None:
    """A TLS stream cannot be peeked at: the reply is read byte by byte, and the target's banner,
    in the same record as the proxy's 200 (one send behind stunnel), reaches the socket passed."""
    reply = b"HTTP/1.1 200 Connection established\r\n\r\n"
    with (
        FakeServer(http_proxy(reply + fakeservers.FAKE_TARGET_BANNER)) as plain,
        peers.stunnel(peers.Peer(port=plain.port, workdir=tmp_path)) as proxy,
    ):
        argv = [*NCFD, "-F", "-x", f"https://localhost:{proxy.port}", "--proxy-cacert", str(proxy.cafile), "h", "22"]
        run_fdpass(argv).assert_banner_and_echo(fakeservers.FAKE_TARGET_BANNER)
