"""ncfd as a process: SIGINT, SIGTERM and SIGHUP end it promptly and quietly, and a hand-off leaves
nothing behind. strace shows every descriptor ncfd made closed but the passed socket, no thread or
child, and nothing on ssh's end of stdout but the one SCM_RIGHTS message."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from tests.support import peers
from tests.support.fakeservers import FakeServer, Handler, Session
from tests.support.fdharness import NCFD, receive

# --- signals ---------------------------------------------------------------------------------

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
PROMPT = 5.0  # seconds from the signal to the exit; ncfd should take milliseconds


def listening_silently(heard: threading.Event) -> Handler:
    """A proxy that reads the request, says when it has, and never answers."""

    def handle(s: Session) -> None:
        while data := s.conn.recv(65536):
            s.received += data
            heard.set()

    return handle


def dispositions(sig: signal.Signals) -> None:
    """preexec_fn: the signal under test starts ignored if it is SIGINT, as ssh may start a
    ProxyCommand and ncfd undoes, else at its default, whatever the test runner inherited."""
    signal.signal(sig, signal.SIG_IGN if sig == signal.SIGINT else signal.SIG_DFL)


@contextlib.contextmanager
def started(argv: list[str], sig: signal.Signals, stdin: int, stdout: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, preexec_fn=lambda: dispositions(sig)
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def assert_ends_quietly_on(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(PROMPT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ncfd still running {PROMPT}s after {sig.name}")
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode(errors="replace")
    assert "Traceback" not in stderr, stderr
    # Killed by the signal, or exiting as a shell reports that (128 + n); never "success".
    assert proc.returncode in (-sig, 128 + sig), (proc.returncode, stderr)


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
@pytest.mark.parametrize("protocol", ["connect", "5"])
def test_signal_ends_a_handshake_with_a_silent_proxy(protocol: str, sig: signal.Signals) -> None:
    heard = threading.Event()
    ours, theirs = socket.socketpair()
    # No -w: ncfd's own deadline is 60 s, so only the signal can end it within the test.
    with FakeServer(listening_silently(heard)) as proxy, ours, theirs:
        argv = [*NCFD, "-F", "-X", protocol, "-x", f"127.0.0.1:{proxy.port}", "example.com", "22"]
        with started(argv, sig, theirs.fileno(), theirs.fileno()) as proc:
            theirs.close()
            assert heard.wait(30), "ncfd never sent the proxy its request"
            assert_ends_quietly_on(proc, sig)
        _, passed, _ = receive(ours, 5)
        assert passed is None, "a descriptor was passed though the handshake never finished"


def read_within(fd: int, size: int, timeout: float) -> bytes:
    data = b""
    while len(data) < size and select.select([fd], [], [], timeout)[0]:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_signal_ends_the_relay_with_stdin_open(banner_target: peers.Target, sig: signal.Signals) -> None:
    argv = [*NCFD, "127.0.0.1", str(banner_target.port)]
    with started(argv, sig, subprocess.PIPE, subprocess.PIPE) as proc:
        assert proc.stdout is not None
        # The banner on stdout means the relay is running.
        assert read_within(proc.stdout.fileno(), len(peers.TARGET_BANNER), 30) == peers.TARGET_BANNER
        assert_ends_quietly_on(proc, sig)
