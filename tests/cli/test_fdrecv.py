"""ncfd-fdrecv: receive a passed socket the way ssh does, then relay it or exec a program on it.

Driven with ncfd -F and nc.openbsd -F, directly and through dante and squid, against the banner/echo
target; and with broken dialers for each way the hand-off can fail."""

from __future__ import annotations

import os
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
from tests.support.fdharness import NCFD
from tests.support.fdrecv import HINT, PREFIX, fdrecv, fdrecv_watching_the_dialer, one_error_line

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


def fake_dialer(mode: str, port: int) -> list[str]:
    return [sys.executable, "-c", FAKE_DIALER, mode, str(port)]


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


def test_relay_half_closes_at_stdin_eof(banner_target: peers.Target) -> None:
    # All of stdin at once, then its EOF: the echo comes back after our half-close.
    r = fdrecv([*NCFD, "-F", "127.0.0.1", str(banner_target.port)], input=b"ping\npong\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == banner_target.banner + b"ping\npong\n"
    assert r.stderr == b""


# --- exec mode ------------------------------------------------------------------------------


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
