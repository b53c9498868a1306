"""ncfd as a process: SIGINT, SIGTERM and SIGHUP end it promptly and quietly, and a hand-off leaves
nothing behind. strace shows every descriptor ncfd made closed but the passed socket, no thread or
child, and nothing on ssh's end of stdout but the one SCM_RIGHTS message."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import peers
from tests.support.fakeservers import FakeServer, Handler, Session
from tests.support.fdharness import NCFD, Handoff, run_fdpass
from tests.support.peers import require

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
        ours.settimeout(5)
        _, fds, _, _ = socket.recv_fds(ours, 1, 1)
        assert fds == [], "a descriptor was passed though the handshake never finished"


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
        assert read_within(proc.stdout.fileno(), len(peers.BANNER), 30) == peers.BANNER
        assert_ends_quietly_on(proc, sig)


# --- what a hand-off leaves behind, from strace --------------------------------------------

# Calls that make, move or close a descriptor, start a task, or write; connect only makes a failure
# message easier to read.
TRACED = (
    "socket,socketpair,connect,openat,fcntl,dup,dup2,dup3,close,"
    "clone,clone3,fork,vfork,execve,write,sendto,sendmsg,exit_group"
)
SPAWNING = {"clone", "clone3", "fork", "vfork"}
WRITING = {"write", "sendto", "sendmsg"}

# "1234 name(args) = result ...": the pid is there with -f. A call cut by another task's line ends in
# "<unfinished ...>" and has no result; its "<... name resumed>" tail is not a call of its own.
CALL = re.compile(r"^(?:(?P<pid>\d+) +)?(?P<name>\w+)\((?P<rest>.*)$")
RESULT = re.compile(r"\) += (\S+)[^=]*$")
SCM_RIGHTS = re.compile(r"SCM_RIGHTS, cmsg_data=\[([\d, ]*)\]")
FD_PAIR = re.compile(r"\[(\d+), (\d+)\]")


@dataclass
class Syscall:
    pid: int
    name: str
    args: str
    result: str | None  # None when unfinished

    def fd_arg(self) -> int:
        return int(self.args.split(",", 1)[0])

    def returned_fd(self) -> int | None:
        if self.result is None or not self.result.isdigit():
            return None  # unfinished, failed (-1) or no result (?)
        return int(self.result)


def parse_trace(text: str) -> list[Syscall]:
    calls = []
    for line in text.splitlines():
        start = CALL.match(line)
        if start is None:  # "+++ exited with 0 +++", "--- SIGALRM ---", "<... x resumed>"
            continue
        end = RESULT.search(start["rest"])
        args, result = (start["rest"][: end.start()], end[1]) if end else (start["rest"], None)
        calls.append(Syscall(int(start["pid"] or 0), start["name"], args, result))
    return calls


def made_fds(call: Syscall) -> list[int]:
    """Descriptors a successful call created (for dup2/dup3: re-pointed)."""
    fd = call.returned_fd()
    if fd is None:
        return []
    if call.name == "socketpair":
        pair = FD_PAIR.search(call.args)
        return [int(pair[1]), int(pair[2])] if pair else []
    if call.name in ("socket", "openat", "dup", "dup2", "dup3") or (call.name == "fcntl" and "F_DUPFD" in call.args):
        return [fd]
    return []


def trace_problems(calls: list[Syscall]) -> list[str]:
    """What is wrong with one ncfd -F run; [] for a clean hand-off."""
    problems = []
    if len({call.pid for call in calls}) > 1:
        problems.append("more than one task ran")
    open_fds: set[int] = set()
    stdout_fds = {1}  # descriptors on ssh's end of the socketpair
    passed: list[int] = []
    channel: int | None = None
    for call in calls:
        if call.name in SPAWNING:
            problems.append(f"started a thread or process: {call.name}({call.args}")
        elif call.name == "execve" and call is not calls[0]:
            problems.append(f"executed a program: execve({call.args}")
        elif call.name == "close" and call.result == "0":
            open_fds.discard(call.fd_arg())
            stdout_fds.discard(call.fd_arg())
        elif call.name in WRITING and call.fd_arg() in stdout_fds:
            rights = SCM_RIGHTS.search(call.args) if call.name == "sendmsg" else None
            if rights is None or passed:
                problems.append(f"sent on stdout besides the descriptor: {call.name}({call.args}")
            else:
                passed = [int(fd) for fd in rights[1].split(",") if fd.strip()]
                channel = call.fd_arg()
        elif call.name == "sendmsg" and SCM_RIGHTS.search(call.args):
            problems.append(f"passed a descriptor elsewhere than stdout: sendmsg({call.args}")
        for fd in made_fds(call):
            open_fds.add(fd)
            # A dup of stdout is stdout; dup2 over it no longer is.
            source = call.fd_arg() if call.name in ("dup", "dup2", "dup3", "fcntl") else None
            if source in stdout_fds:
                stdout_fds.add(fd)
            else:
                stdout_fds.discard(fd)
        if call.name == "exit_group":
            break
    else:
        problems.append("no exit_group: the trace stops short")
    if len(passed) != 1:
        problems.append(f"expected one descriptor passed, got {passed}")
    elif passed[0] not in open_fds:
        problems.append(f"passed descriptor {passed[0]}, which ncfd had not made or had closed")
    # 0-2 are inherited; the passed socket and stdout's private dup are ssh's to keep.
    leaked = open_fds - {0, 1, 2, channel, *passed}
    if leaked:
        problems.append(f"descriptors left open at exit: {sorted(leaked)}")
    return problems


def traced_handoff(tmp_path: Path, argv: list[str], stray_bytes_ok: bool = False) -> tuple[Handoff, str]:
    require("strace")
    trace = tmp_path / "strace.out"
    r = run_fdpass(["strace", "-f", "-e", f"trace={TRACED}", "-o", str(trace), *argv], stray_bytes_ok=stray_bytes_ok)
    return r, trace.read_text()


# (proxy fixture, -X protocol): direct, each SOCKS version and both HTTP proxies.
PATHS = [
    (None, None),
    ("dante", "5"),
    ("dante", "4"),
    ("microsocks", "5"),
    ("squid", "connect"),
    ("tinyproxy", "connect"),
]


@pytest.mark.parametrize(("fixture", "protocol"), PATHS, ids=[f"{f}-{p}" if f else "direct" for f, p in PATHS])
def test_handoff_leaves_only_the_passed_socket(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    banner_target: peers.Target,
    fixture: str | None,
    protocol: str | None,
) -> None:
    via: list[str] = []
    if fixture is not None:
        proxy: peers.Proxy = request.getfixturevalue(fixture)
        via = ["-X", str(protocol), "-x", proxy.address]
    # -v: its narration must go to stderr, not to ssh ahead of the descriptor.
    r, trace = traced_handoff(tmp_path, [*NCFD, "-F", "-v", *via, "127.0.0.1", str(banner_target.port)])
    r.assert_banner_and_echo(peers.BANNER)
    assert trace_problems(parse_trace(trace)) == [], trace


# The same checks against ncfd made to misbehave around its real entry point: they must fail.
SABOTAGE = {
    "socket left open": ("import socket; kept = socket.socket()", "descriptors left open at exit"),
    "thread": ("import threading; threading.Thread(target=int).start()", "started a thread or process"),
    "byte on stdout": ("import os; os.write(1, b'x')", "sent on stdout besides the descriptor"),
}


@pytest.mark.parametrize("sabotage", SABOTAGE)
def test_trace_check_catches_a_misbehaving_ncfd(tmp_path: Path, banner_target: peers.Target, sabotage: str) -> None:
    code, expected = SABOTAGE[sabotage]
    argv = [sys.executable, "-c", f"{code}\nfrom ncfd.cli import main; raise SystemExit(main())"]
    # The harness would see the stray byte itself: the trace check is what is tested here.
    r, trace = traced_handoff(tmp_path, [*argv, "-F", "127.0.0.1", str(banner_target.port)], stray_bytes_ok=True)
    r.close()
    problems = trace_problems(parse_trace(trace))
    assert any(expected in p for p in problems), problems


CLEAN = """\
700 execve("/usr/bin/python3", ["python3", "-m", "ncfd"], 0x7ffd /* 9 vars */) = 0
700 openat(AT_FDCWD, "/nonexistent", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)
700 openat(AT_FDCWD, "/usr/lib/python3.11/os.py", O_RDONLY|O_CLOEXEC) = 3
700 close(3)                          = 0
700 fcntl(1, F_DUPFD_CLOEXEC, 0)      = 3
700 dup2(2, 1)                        = 1
700 write(1, "ncfd: connecting\\n", 17) = 17
700 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 4
700 connect(4, {sa_family=AF_INET, sin_port=htons(1080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
700 sendto(4, "\\5\\1\\0", 3, 0, NULL, 0) = 3
700 sendmsg(3, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="\\0", iov_len=1}], msg_iovlen=1, \
msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[4]}], msg_controllen=24, \
msg_flags=0}, 0) = 1
700 exit_group(0)                     = ?
700 +++ exited with 0 +++
"""


def test_parser_passes_a_clean_trace() -> None:
    assert trace_problems(parse_trace(CLEAN)) == []


# (replace this, with that) in CLEAN, and what the check must then say.
BAD_EDITS = [
    (("700 exit_group", "700 socket(AF_INET6, SOCK_STREAM, 0) = 5\n700 exit_group"), "left open at exit: [5]"),
    (("700 exit_group", "700 dup(4) = 6\n700 exit_group"), "left open at exit: [6]"),
    (("700 dup2(2, 1)", '700 write(1, "x", 1) = 1\n700 dup2(2, 1)'), "sent on stdout besides the descriptor"),
    (("fcntl(1,", "fcntl(2,"), "passed a descriptor elsewhere than stdout"),
    (("700 socket(", "700 clone3({flags=CLONE_VM} <unfinished ...>\n701 <... clone3 resumed>) = 0\n700 socket("),
     "started a thread or process: clone3"),
    (("700 exit_group(0)                     = ?\n", ""), "no exit_group"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), BAD_EDITS)
def test_parser_flags_a_bad_trace(change: tuple[str, str], expected: str) -> None:
    bad = CLEAN.replace(*change)
    assert bad != CLEAN
    problems = trace_problems(parse_trace(bad))
    assert any(expected in p for p in problems), problems
