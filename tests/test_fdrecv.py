"""ncfd-fdrecv: receive a passed socket the way ssh does, then relay it or exec a program on it.

Driven with ncfd -F and nc.openbsd -F, directly and through dante and squid, against the banner/echo
target; and with broken dialers for each way the hand-off can fail."""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import ncfd
from ncfd.log import quiet
from tests.support import peers
from tests.support.fdharness import NCFD, ncfd_command
from tests.support.peers import require

FDRECV = [sys.executable, "-m", "ncfd.fdrecv"]
PREFIX = "ncfd-fdrecv: "
HINT = "is it an fd-passing dialer (nc -F, ncfd -F)?"

# A dialer that does the hand-off wrong in one of several ways: python -c FAKE_DIALER MODE PORT.
FAKE_DIALER = r"""
import os, signal, socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
out = socket.socket(fileno=1)
conn = socket.create_connection(("127.0.0.1", port))
if mode == "two":
    # Two copies of one end of a pair; the other end reads its end of file once both are closed.
    # SIGTERM ignored: ncfd-fdrecv stops us after refusing them, and must have closed them first.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    mine, other = socket.socketpair()
    socket.send_fds(out, [b"\0"], [mine.fileno(), mine.fileno()])
    mine.close()
    other.settimeout(20)
    if other.recv(1) == b"":
        print("both copies closed", file=sys.stderr)
elif mode == "pipe":
    r, w = os.pipe()
    os.write(w, b"from a pipe\n")
    os.close(w)
    socket.send_fds(out, [b"\0"], [r])
else:
    socket.send_fds(out, [b"\0"], [conn.fileno()])
if mode == "exit3":
    sys.exit(3)
if mode == "hang":
    time.sleep(30)
"""


def fdrecv(args: list[str], input: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*FDRECV, *args], input=input, capture_output=True, timeout=timeout)


def fake_dialer(mode: str, port: int) -> list[str]:
    return [sys.executable, "-c", FAKE_DIALER, mode, str(port)]


def fdrecv_watching_the_dialer(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """Run with -v and return the result and our last line on stderr, once the dialer, whose pid -v
    names, is checked to be gone. stderr goes to a file: a dialer left running would hold a pipe."""
    err_path = tmp_path / "stderr"
    with err_path.open("wb") as err:
        argv = [*FDRECV, "-v", *args]
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, timeout=20)
    lines = err_path.read_text().splitlines()
    started = re.fullmatch(rf"{PREFIX}started \S+, pid (\d+)", lines[0])
    assert started, lines
    pid = int(started[1])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"the dialer, pid {pid}, was still running after ncfd-fdrecv exited: {lines}")
    assert all(line.startswith(PREFIX) for line in lines), lines
    return r, lines[-1][len(PREFIX) :]


def one_error_line(r: subprocess.CompletedProcess[bytes]) -> str:
    """The whole of stderr, checked to be one line from us and no traceback."""
    err = r.stderr.decode()
    assert err.startswith(PREFIX) and err.endswith("\n") and err.count("\n") == 1, err
    return err[len(PREFIX) : -1]


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


# --- the program ----------------------------------------------------------------------------


def test_console_script_is_installed() -> None:
    script = shutil.which("ncfd-fdrecv", path=os.path.dirname(sys.executable))
    assert script, "pip install should provide ncfd-fdrecv next to the interpreter"
    r = subprocess.run([script, "-h"], capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(b"usage: ncfd-fdrecv ") and r.stderr == b""


@pytest.mark.parametrize("flag", ["-h", "--help", "-vh"])
def test_help_on_stdout_exit_0(flag: str) -> None:
    r = fdrecv([flag])
    assert r.returncode == 0 and r.stderr == b""
    out = r.stdout.decode()
    assert out.startswith(
        "usage: ncfd-fdrecv [-hv] [--version] [-w seconds] [--exec PROG [ARG ...] --] [--] DIALER [ARG ...]\n"
    )
    for code in ("0", "1", "2", "124", "126", "127"):
        assert f"\n  {code} " in out, f"exit status {code} is not documented"


def test_version_on_stdout() -> None:
    r = fdrecv(["--version"])
    assert (r.returncode, r.stdout, r.stderr) == (0, f"ncfd-fdrecv {ncfd.__version__}\n".encode(), b"")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no DIALER given; usage: ncfd-fdrecv "),
        (["-v"], "no DIALER given; usage: ncfd-fdrecv "),
        (["-x", "true"], "unknown option -x; usage: ncfd-fdrecv "),
        (["--verbose", "true"], "unknown option --verbose; usage: ncfd-fdrecv "),
        (["-w"], "-w needs a number of seconds"),
        (["-w", "soon", "true"], '-w wants a number of seconds (0: for ever), not "soon"'),
        (["-w", "-1", "true"], '-w wants a number of seconds (0: for ever), not "-1"'),
        (["-w", "nan", "true"], '-w wants a number of seconds (0: for ever), not "nan"'),
        (["--exec", "cat", "true"], '--exec PROG ... must be ended by "--", then DIALER'),
        (["--exec", "--", "true"], "--exec needs a program before its --"),
        (["--exec", "cat", "--"], "no DIALER given; usage: ncfd-fdrecv "),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    r = fdrecv(args)
    assert r.returncode == 2 and r.stdout == b""
    assert one_error_line(r).startswith(message)


def test_options_cluster_and_dialer_may_follow_double_dash(banner_target: peers.Target) -> None:
    r = fdrecv(["-vw5", "--", *NCFD, "-F", "127.0.0.1", str(banner_target.port)], input=b"x\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == banner_target.banner + b"x\n"


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


def test_relay_half_closes_at_stdin_eof(banner_target: peers.Target) -> None:
    # All of stdin at once, then its EOF: the echo comes back after our half-close.
    r = fdrecv([*NCFD, "-F", "127.0.0.1", str(banner_target.port)], input=b"ping\npong\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == banner_target.banner + b"ping\npong\n"
    assert r.stderr == b""


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


def test_exec_prog_not_found_fails_before_the_dialer_runs(tmp_path: Path) -> None:
    marker = tmp_path / "dialer-ran"
    r = fdrecv(["--exec", "ncfd-fdrecv-no-such-prog", "--", "touch", str(marker)])
    assert r.returncode == 127
    assert one_error_line(r) == "cannot run ncfd-fdrecv-no-such-prog: No such file or directory"
    assert not marker.exists()


def test_exec_with_the_brief_example(banner_target: peers.Target) -> None:
    # The program's stdout is the socket: its echo goes to the target, not to our stdout.
    argv = [*NCFD, "-F", "127.0.0.1", str(banner_target.port)]
    r = fdrecv(["--exec", "sh", "-c", 'read banner; echo "$banner"', "--", *argv])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"" and r.stderr == b""


# --- dialers that fail ----------------------------------------------------------------------


def test_dialer_exits_1_without_a_descriptor() -> None:
    r = fdrecv(["false"])
    assert r.returncode == 1 and r.stdout == b""
    assert one_error_line(r) == "false exited with status 1 without passing a descriptor"


def test_nc_fails_to_connect() -> None:
    require("nc.openbsd")
    closed = peers.free_port()
    r = fdrecv(["nc.openbsd", "-F", "127.0.0.1", str(closed)])
    assert r.returncode == 1 and r.stdout == b""
    # nc says nothing without -v; we say what ssh could only call "did not pass back a connection".
    assert one_error_line(r) == "nc.openbsd exited with status 1 without passing a descriptor"


def test_ncfd_fails_to_connect_its_line_then_ours() -> None:
    closed = peers.free_port()
    r = fdrecv([*NCFD, "-F", "127.0.0.1", str(closed)])
    assert r.returncode == 1 and r.stdout == b""
    # ncfd's own line (its wording is ncfd's business), then ours with its exit status.
    ncfd_line, ours = r.stderr.decode().splitlines()
    assert ncfd_line.startswith("ncfd: ") and "Connection refused" in ncfd_line
    assert ours == f"{PREFIX}{sys.executable} exited with status 4 without passing a descriptor"


def test_dialer_killed_by_a_signal() -> None:
    r = fdrecv(["sh", "-c", "kill -KILL $$"])
    assert r.returncode == 1
    assert one_error_line(r) == "sh was killed by SIGKILL without passing a descriptor"


def test_dialer_writes_bytes_but_no_descriptor() -> None:
    r = fdrecv(["echo", "hi"])
    assert r.returncode == 1 and r.stdout == b""
    assert one_error_line(r) == f'echo sent 3 bytes but no descriptor: {HINT} It sent "hi\\n"'


def test_what_it_wrote_is_quoted_escaped() -> None:
    r = fdrecv(["printf", 'SSH-2.0-x\\r\\n\\377"\\\\'])
    assert r.returncode == 1
    assert one_error_line(r) == f'printf sent 14 bytes but no descriptor: {HINT} It sent "SSH-2.0-x\\r\\n\\xff\\"\\\\"'


def test_nc_without_f_is_told_apart_and_stopped(banner_target: peers.Target, tmp_path: Path) -> None:
    """A relaying nc sends the banner and keeps running: we count what came, stop it, and fail fast."""
    require("nc.openbsd")
    start = time.monotonic()
    r, error = fdrecv_watching_the_dialer(["-w", "20", "nc.openbsd", "127.0.0.1", str(banner_target.port)], tmp_path)
    assert time.monotonic() - start < 10
    assert r.returncode == 1
    assert error == f'nc.openbsd sent 13 bytes but no descriptor: {HINT} It sent "HELLO-TARGET\\n"'


@pytest.mark.parametrize(
    "dialer", [["sleep", "60"], ["sh", "-c", "trap '' TERM; exec sleep 60"]], ids=["sleep", "ignoring-SIGTERM"]
)
def test_dialer_hangs_without_passing_anything(tmp_path: Path, dialer: list[str]) -> None:
    start = time.monotonic()
    r, error = fdrecv_watching_the_dialer(["-w", "2", *dialer], tmp_path)
    assert time.monotonic() - start < 20
    assert r.returncode == 124 and r.stdout == b""
    assert error == f"{dialer[0]} passed no descriptor within 2s; killed it"


def test_a_deadline_over_before_the_dialer_started_is_a_time_out() -> None:
    # A socket timeout of 0 would be non-blocking: "closed its stdout without passing a descriptor".
    r = fdrecv(["-w", "0.000001", "sleep", "5"])
    assert r.returncode == 124 and r.stdout == b""
    assert one_error_line(r) == "sleep passed no descriptor within 1e-06s; killed it"


def test_dialer_exits_but_leaves_its_stdout_open() -> None:
    # ssh would wait in recvmsg for ever; the background sleep still holds the socketpair end.
    r = fdrecv(["-w", "3", "sh", "-c", "sleep 10 2>/dev/null & exit 0"])
    assert r.returncode == 124
    assert one_error_line(r) == (
        "sh exited with status 0, but its stdout stayed open (a process it left behind?)"
        " and no descriptor came within 3s"
    )


def test_dialer_closes_its_stdout_and_keeps_running(tmp_path: Path) -> None:
    # Both: they are the same socket.
    r, error = fdrecv_watching_the_dialer(["sh", "-c", "exec >&- <&-; exec sleep 30"], tmp_path)
    assert r.returncode == 1
    assert error == "sh closed its stdout without passing a descriptor, and did not exit; killed it"


def test_dialer_not_found() -> None:
    r = fdrecv(["ncfd-fdrecv-no-such-dialer", "-F", "host", "22"])
    assert r.returncode == 127 and r.stdout == b""
    assert one_error_line(r) == "cannot run ncfd-fdrecv-no-such-dialer: No such file or directory"


def test_dialer_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "dialer"
    script.write_text("#!/bin/sh\n")
    r = fdrecv([str(script)])
    assert r.returncode == 126
    assert one_error_line(r) == f"cannot run {script}: Permission denied"


def test_descriptor_passed_then_nonzero_exit_warns_and_relays(banner_target: peers.Target) -> None:
    r = fdrecv(fake_dialer("exit3", banner_target.port), input=b"on\n")
    assert r.returncode == 0
    assert r.stdout == banner_target.banner + b"on\n"
    warning = f"warning: {sys.executable} passed a descriptor but exited with status 3 (ssh ignores this)"
    assert one_error_line(r) == warning


def test_descriptor_passed_but_no_exit(banner_target: peers.Target, tmp_path: Path) -> None:
    start = time.monotonic()
    r, error = fdrecv_watching_the_dialer(["-w", "1", *fake_dialer("hang", banner_target.port)], tmp_path)
    assert time.monotonic() - start < 10
    assert r.returncode == 124 and r.stdout == b""
    assert error == (
        f"{sys.executable} passed a descriptor but did not exit within 1s (ssh would wait for it for ever); killed it"
    )


def test_two_descriptors_are_refused_and_closed(banner_target: peers.Target) -> None:
    r = fdrecv(fake_dialer("two", banner_target.port))
    assert r.returncode == 1 and r.stdout == b""
    # The dialer's line first: it saw both copies closed while ncfd-fdrecv was still stopping it.
    assert r.stderr.decode().splitlines() == [
        "both copies closed",
        f"{PREFIX}{sys.executable} passed 2 descriptors; ssh expects exactly one",
    ]


def test_a_pipe_cannot_be_relayed(banner_target: peers.Target) -> None:
    r = fdrecv(fake_dialer("pipe", banner_target.port))
    assert r.returncode == 1 and r.stdout == b""
    assert one_error_line(r) == "the descriptor passed is not a socket; nothing to relay"


def test_a_pipe_can_be_exec_d_on(banner_target: peers.Target) -> None:
    # ssh takes any descriptor; --exec gives it to PROG as it is.
    r = fdrecv(["--exec", "sh", "-c", 'read line; echo "$line" >&2', "--", *fake_dialer("pipe", banner_target.port)])
    assert r.returncode == 0, r.stderr
    assert r.stderr == b"from a pipe\n"


def test_no_deadline_with_w_0(banner_target: peers.Target) -> None:
    r = fdrecv(["-w", "0", *NCFD, "-F", "127.0.0.1", str(banner_target.port)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == banner_target.banner


class AnHourLater:
    """ncfd.fdrecv's clock: every reading after the first (its start) is an hour on."""

    def __init__(self) -> None:
        self.started = False
        self.sleep = time.sleep

    def monotonic(self) -> float:
        now = time.monotonic()
        if not self.started:
            self.started = True
            return now
        return now + 3600


@pytest.mark.parametrize(("w", "error"), [("0", None), ("600", "sleep passed no descriptor within 600s; killed it")])
def test_w_0_waits_for_ever(
    monkeypatch: pytest.MonkeyPatch, banner_target: peers.Target, w: str, error: str | None
) -> None:
    """-w 0 is no deadline, not a long one: an hour on, the hand-off is still waited for (and the
    same clock does end -w 600)."""
    from ncfd import fdrecv as module

    monkeypatch.setattr(module, "time", AnHourLater())
    dialer = [*NCFD, "-F", "127.0.0.1", str(banner_target.port)] if error is None else ["sleep", "5"]
    outcome: list[int | Exception] = []

    def receive() -> None:
        try:
            outcome.append(module.receive(module.parse_args(["-w", w, *dialer]), quiet))
        except module.Failure as e:
            outcome.append(e)

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "receive() did not return within 30s"
    if error is None:
        assert isinstance(outcome[0], int), outcome
        with socket.socket(fileno=outcome[0]) as sock:
            assert sock.getpeername() == ("127.0.0.1", banner_target.port)
    else:
        assert isinstance(outcome[0], module.Failure) and str(outcome[0]) == error, outcome


# --- what the children inherit, and the wait ------------------------------------------------

# Prints the signals the process ignores (a bit mask in hex) on stderr.
SIG_IGN_PROBE = "sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status >&2"
SIGPIPE_BIT = 1 << (signal.SIGPIPE - 1)


def test_dialer_and_prog_do_not_inherit_ignored_sigpipe(banner_target: peers.Target) -> None:
    """Python ignores SIGPIPE; the programs it starts must not (as subprocess ensures)."""
    if not os.path.exists("/proc/self/status"):
        peers.unavailable("needs /proc")
    r = fdrecv(["sh", "-c", f"{SIG_IGN_PROBE}; exit 1"])
    assert not int(r.stderr.decode().splitlines()[0], 16) & SIGPIPE_BIT
    r = fdrecv(["--exec", "sh", "-c", SIG_IGN_PROBE, "--", *NCFD, "-F", "127.0.0.1", str(banner_target.port)])
    assert r.returncode == 0
    assert not int(r.stderr.decode(), 16) & SIGPIPE_BIT


@pytest.mark.parametrize("pidfd", [True, False])
def test_wait_with_and_without_pidfd(monkeypatch: pytest.MonkeyPatch, pidfd: bool) -> None:
    from ncfd import fdrecv as module

    if pidfd and not hasattr(os, "pidfd_open"):
        peers.unavailable("no os.pidfd_open here")
    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    pid = os.posix_spawnp("sh", ["sh", "-c", "sleep 0.3; exit 5"], os.environ)
    status = None
    try:
        assert module._wait(pid, time.monotonic() + 0.05) is None
        status = module._wait(pid, time.monotonic() + 10)
    finally:
        if status is None:
            module._kill(pid)
    assert status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 5
