"""The relay's ways of moving bytes (splice straight to or from a pipe, splice through a pipe of its
own, read/write) each carry large transfers intact, whatever stdin and stdout are: pipes, sockets,
regular files, a file opened for append, a tty; and with splice taken away, as on a system without it.

Checksums, not timings: how fast is scripts/bench's business.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import os
import pty
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.fakeservers import FakeServer, Session
from tests.support.fdharness import NCFD
from tests.support.relay_modes import DATA, HAS_SPLICE, SIZE

DIGEST = hashlib.sha256(DATA).hexdigest()
# ncfd as a system without splice runs it: the read/write loop only.
NCFD_NO_SPLICE = [
    sys.executable,
    "-c",
    "import os, sys; os.__dict__.pop('splice', None); from ncfd.cli import main; sys.exit(main())",
]
RELAYS = [pytest.param(NCFD, id="splice" if HAS_SPLICE else "copy"), pytest.param(NCFD_NO_SPLICE, id="copy")]


# --- servers ----------------------------------------------------------------------------------


def sends(data: bytes) -> Callable[[Session], None]:
    def handle(s: Session) -> None:
        s.conn.sendall(data)

    return handle


def digests(s: Session) -> None:
    """Read to EOF, answer "<sha256> <length>\\n"."""
    digest, length = hashlib.sha256(), 0
    while chunk := s.conn.recv(1 << 20):
        digest.update(chunk)
        length += len(chunk)
    s.conn.sendall(f"{digest.hexdigest()} {length}\n".encode())


def echoes(s: Session) -> None:
    while chunk := s.conn.recv(1 << 20):
        s.conn.sendall(chunk)


def floods(s: Session) -> None:
    with contextlib.suppress(OSError):
        while True:
            s.conn.sendall(DATA[: 1 << 20])


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.01)


def proc_state(pid: int) -> str:
    """R, S, T (stopped)... from /proc/<pid>/stat."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def unacknowledged(sock: socket.socket) -> int:
    """Bytes in sock's send queue that the peer's kernel has not acknowledged yet (SIOCOUTQ)."""
    return int(struct.unpack("i", fcntl.ioctl(sock, termios.TIOCOUTQ, b"\0" * 4))[0])


def ncfd_argv(relay_argv: list[str], server: FakeServer, *options: str) -> list[str]:
    return [*relay_argv, *options, "127.0.0.1", str(server.port)]


# --- through pipes, as ssh runs a ProxyCommand --------------------------------------------------


@pytest.mark.parametrize("relay_argv", RELAYS)
def test_download_through_pipes(relay_argv: list[str]) -> None:
    with FakeServer(sends(DATA)) as t:
        r = subprocess.run(ncfd_argv(relay_argv, t, "-d"), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    assert len(r.stdout) == SIZE and hashlib.sha256(r.stdout).hexdigest() == DIGEST


@pytest.mark.parametrize("relay_argv", RELAYS)
def test_upload_through_pipes_with_N(relay_argv: list[str]) -> None:
    with FakeServer(digests) as t:
        r = subprocess.run(ncfd_argv(relay_argv, t, "-N"), input=DATA, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{DIGEST} {SIZE}\n".encode()


@pytest.mark.parametrize("relay_argv", RELAYS)
def test_both_ways_at_once_through_pipes(relay_argv: list[str]) -> None:
    with FakeServer(echoes) as t:
        r = subprocess.run(ncfd_argv(relay_argv, t, "-N"), input=DATA, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == SIZE and hashlib.sha256(r.stdout).hexdigest() == DIGEST


@pytest.mark.parametrize("relay_argv", RELAYS)
def test_stdout_going_away_ends_the_relay_quietly(relay_argv: list[str]) -> None:
    with FakeServer(floods) as t:
        proc = subprocess.Popen(
            ncfd_argv(relay_argv, t), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            assert len(proc.stdout.read(1 << 20)) == 1 << 20
            proc.stdout.close()  # the reader goes: the next write or splice meets EPIPE
            assert proc.wait(timeout=30) == 0
            assert proc.stderr.read() == b""
        finally:
            proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.mark.parametrize("relay_argv", RELAYS)
def test_a_reset_after_data_ends_the_relay_with_the_data_out(relay_argv: list[str]) -> None:
    """The reset lands while all the data waits in ncfd's socket: the server stops ncfd as it
    accepts, sends, waits until ncfd's kernel has acknowledged every byte, resets, and lets ncfd go
    on. All the data comes out, then ncfd exits 0."""
    data = DATA[:100_000]  # fits in the socket's receive buffer unread: all of it is acknowledged
    started = threading.Event()
    reset = threading.Event()
    pid: list[int] = []

    def handle(s: Session) -> None:
        assert started.wait(30)
        os.kill(pid[0], signal.SIGSTOP)
        try:
            wait_for(lambda: proc_state(pid[0]) == "T", "ncfd stopped")
            s.conn.sendall(data)
            wait_for(lambda: unacknowledged(s.conn) == 0, "the data acknowledged")
            s.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.conn.close()
            reset.set()
        finally:
            os.kill(pid[0], signal.SIGCONT)

    with FakeServer(handle) as t:
        proc = subprocess.Popen(
            ncfd_argv(relay_argv, t, "-d"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        pid.append(proc.pid)
        started.set()
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.wait()
    assert reset.is_set(), "the server never reset the connection"
    assert (proc.returncode, err) == (0, b"")
    assert out == data


@pytest.mark.parametrize("relay_argv", RELAYS)
def test_idle_timeout_and_q_still_end_the_relay(relay_argv: list[str]) -> None:
    """The server keeps the connection open, sending nothing more: only -w's idle timeout, or -q 0
    after stdin's EOF, ends ncfd (within the outer bound, well before the server lets go)."""
    release = threading.Event()

    def linger(s: Session) -> None:
        s.conn.sendall(b"hello\n")
        while s.conn.recv(1):  # until ncfd's EOF (-q implies -N), or its exit
            pass
        release.wait(120)  # open, silent: ncfd must leave by itself

    with FakeServer(linger) as t:
        try:
            idle = subprocess.run(ncfd_argv(relay_argv, t, "-d", "-w", "1"), capture_output=True, timeout=30)
            quit_ = subprocess.run(ncfd_argv(relay_argv, t, "-q", "0"), input=b"", capture_output=True, timeout=20)
        finally:
            release.set()
    assert (idle.returncode, idle.stdout) == (0, b"hello\n")
    assert quit_.returncode == 0, quit_.stderr


# --- sockets, files, a tty ----------------------------------------------------------------------


@contextlib.contextmanager
def socket_stdio() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A socketpair end for ncfd's stdin and stdout, as inetd or a socket-activated unit gives."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        yield ours, theirs


@pytest.mark.parametrize("relay_argv", RELAYS)
def test_both_ways_through_a_socket_on_stdin_and_stdout(relay_argv: list[str]) -> None:
    received = bytearray()
    with FakeServer(echoes) as t, socket_stdio() as (ours, theirs):
        proc = subprocess.Popen(ncfd_argv(relay_argv, t, "-N"), stdin=theirs.fileno(), stdout=theirs.fileno())
        theirs.close()

        def feed() -> None:
            ours.sendall(DATA)
            ours.shutdown(socket.SHUT_WR)

        feeder = threading.Thread(target=feed)
        feeder.start()
        ours.settimeout(60)
        while chunk := ours.recv(1 << 20):
            received += chunk
        feeder.join()
        assert proc.wait(timeout=30) == 0
    assert len(received) == SIZE and hashlib.sha256(received).hexdigest() == DIGEST


@pytest.mark.parametrize("relay_argv", RELAYS)
@pytest.mark.parametrize("append", [False, True], ids=["truncate", "append"])
def test_regular_files_on_stdin_and_stdout(relay_argv: list[str], append: bool, tmp_path: Path) -> None:
    source, sink = tmp_path / "in", tmp_path / "out"
    source.write_bytes(DATA)
    sink.write_bytes(b"before\n" if append else b"")
    with FakeServer(echoes) as t, source.open("rb") as stdin, sink.open("ab" if append else "wb") as stdout:
        r = subprocess.run(ncfd_argv(relay_argv, t, "-N"), stdin=stdin, stdout=stdout, timeout=60)
    assert r.returncode == 0
    out = sink.read_bytes()
    if append:
        assert out.startswith(b"before\n")
        out = out[len(b"before\n") :]
    assert len(out) == SIZE and hashlib.sha256(out).hexdigest() == DIGEST


@pytest.mark.parametrize("relay_argv", RELAYS)
def test_a_tty_on_stdout(relay_argv: list[str]) -> None:
    text = b"".join(b"line %d of the banner\n" % i for i in range(2000))
    leader, follower = pty.openpty()
    try:
        with FakeServer(sends(text)) as t:
            proc = subprocess.Popen(ncfd_argv(relay_argv, t, "-d"), stdin=subprocess.DEVNULL, stdout=follower)
            os.close(follower)
            follower = -1
            got = bytearray()
            with contextlib.suppress(OSError):  # EIO once ncfd has gone and the tty has no writer
                while chunk := os.read(leader, 65536):
                    got += chunk
            assert proc.wait(timeout=30) == 0
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert bytes(got).replace(b"\r\n", b"\n") == text


# --- the pumps, in-process ----------------------------------------------------------------------


def test_relay_closes_its_own_pipe() -> None:
    """The relay's own pipe (socket to socket) is closed when it ends: no descriptor leaks."""
    with FakeServer(sends(b"x" * 1000)) as t, socket_stdio() as (ours, theirs):
        script = (
            "import os, sys; from ncfd.cli import main; code = main();"
            " print(sorted(os.listdir('/proc/self/fd')), file=sys.stderr); sys.exit(code)"
        )
        proc = subprocess.run(
            [sys.executable, "-c", script, "-d", "127.0.0.1", str(t.port)],
            stdin=subprocess.DEVNULL,
            stdout=theirs.fileno(),
            stderr=subprocess.PIPE,
            timeout=30,
        )
        theirs.close()
        ours.settimeout(10)
        assert ours.recv(2000) == b"x" * 1000
    assert proc.returncode == 0
    fds = ast.literal_eval(proc.stderr.decode().strip().splitlines()[-1])
    # 0, 1, 2, and the one listdir itself opened; not the relay's pipe, not the socket.
    assert len(fds) == 4, fds
