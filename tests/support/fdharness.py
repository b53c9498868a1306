"""Run a command the way ssh runs a ProxyCommand with ProxyUseFdpass: one end of a unix socketpair
on its stdin and stdout, then recvmsg one byte and one descriptor, then wait for it to exit.

The one receiver of a passed descriptor for the tests, scripts/bench, scripts/load and scripts/demo
(no pytest here: the scripts run without it)."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

NCFD = [sys.executable, "-m", "ncfd"]
EOF_WAIT = 5.0  # seconds for the end of file on ssh's end once the command exited
MAX_FDS = 4  # more than the one ssh takes, to see a command that passes several


def ncfd_command() -> str:
    """The console script installed next to this interpreter, as a user's ProxyCommand names it."""
    script = shutil.which("ncfd", path=os.path.dirname(sys.executable))
    return script or " ".join(shlex.quote(a) for a in NCFD)


@dataclass
class Handoff:
    returncode: int
    stderr: str
    payload: bytes
    sock: socket.socket | None
    elapsed: float
    extra_fds: list[int] = field(default_factory=list)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        for fd in self.extra_fds:
            os.close(fd)

    def assert_banner_and_echo(self, banner: bytes) -> None:
        """A successful hand-off whose socket reaches a banner-then-echo target; closes it."""
        assert self.returncode == 0, self.stderr
        assert self.read_exactly(len(banner)) == banner
        assert self.sock is not None
        self.sock.sendall(b"round trip\n")
        assert self.read_exactly(11) == b"round trip\n"
        self.close()

    def read_exactly(self, n: int, timeout: float = 10) -> bytes:
        assert self.sock is not None, f"no descriptor was passed; stderr: {self.stderr}"
        self.sock.settimeout(timeout)
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                break
            data += chunk
        return data


def run_fdpass(
    argv: list[str], timeout: float = 30, env: dict[str, str] | None = None, stray_bytes_ok: bool = False
) -> Handoff:
    """argv is the whole command (e.g. NCFD + [...] or ["nc.openbsd", ...]). A byte on stdout
    besides the one carrying the descriptor fails, unless stray_bytes_ok (for a test of a check
    of its own)."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    start = time.perf_counter()
    with parent:
        try:
            proc = subprocess.Popen(argv, stdin=child.fileno(), stdout=child.fileno(), stderr=subprocess.PIPE, env=env)
        finally:
            child.close()  # else parent never sees EOF when the command dies without passing
        try:
            payload, sock, extra_fds = receive(parent, timeout)
        except TimeoutError:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{argv} neither passed a descriptor nor exited within {timeout}s") from None
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{argv} did not exit after passing the descriptor") from None
        elapsed = time.perf_counter() - start
        # ssh reads one byte: anything after it would be a protocol error another receiver might trip on.
        trailing = _read_to_eof(parent, argv)
    assert stray_bytes_ok or trailing == b"", f"{argv} wrote {trailing!r} after the one-byte payload"
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    return Handoff(proc.returncode, stderr, payload, sock, elapsed, extra_fds)


def receive(channel: socket.socket, timeout: float) -> tuple[bytes, socket.socket | None, list[int]]:
    """What ssh reads on its end of the socketpair (mm_receive_fd): one byte, and the descriptor that
    came with it, as a socket (None when none came), then any more descriptors that came with it
    (ssh would refuse them). TimeoutError when nothing came within timeout; b"" at end of file."""
    channel.settimeout(timeout)
    payload, fds, _flags, _addr = socket.recv_fds(channel, 1, MAX_FDS)
    return payload, socket.socket(fileno=fds[0]) if fds else None, list(fds[1:])


def _read_to_eof(sock: socket.socket, argv: list[str]) -> bytes:
    """What else came on ssh's end once the command exited; its end of file must come at once."""
    sock.settimeout(EOF_WAIT)
    data = b""
    try:
        while chunk := sock.recv(1 << 16):
            data += chunk
    except TimeoutError:
        raise AssertionError(f"{argv} exited but its stdout stayed open (a process left holding it?)") from None
    return data


def run_ncfd(
    args: list[str], timeout: float = 30, input: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ncfd on plain pipes: usage errors, relay mode."""
    return subprocess.run(NCFD + args, capture_output=True, timeout=timeout, input=input, env=env)
