"""The password prompt on the terminal: echo off before the prompt shows, so that an answer typed
the instant it appears (a password manager, expect, a paste) is neither lost nor echoed; the
terminal restored on every way out, signals and Ctrl-Z included; never stdin.

ncfd runs as a command of a small job-control shell (tests/jobshell.py) on a pseudo-terminal, with
ssh's socketpair on its stdin and stdout, as when ssh runs a ProxyCommand in a terminal.
"""

from __future__ import annotations

import base64
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import jobshell
from tests.support.fakeservers import FAKE_TARGET_BANNER, FakeServer, Session
from tests.support.fdharness import NCFD, receive

USER = "alice"
PASSWORD = "s3cret pass:word"
JOBSHELL = jobshell.__file__
WAIT = 20.0  # seconds for anything to happen; on an idle machine it takes milliseconds


@pytest.fixture(scope="module")
def basic_proxy() -> Iterator[FakeServer]:
    good = b"Proxy-Authorization: Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode())

    def handler(s: Session) -> None:
        if good in s.recv_until(b"\r\n\r\n"):
            s.send(b"HTTP/1.1 200 OK\r\n\r\n" + FAKE_TARGET_BANNER)
            return s.echo()
        s.send(b'HTTP/1.0 407 Auth\r\nProxy-Authenticate: Basic realm="x"\r\n\r\n')

    with FakeServer(handler) as server:
        yield server


class Terminal:
    """ncfd -F asking for the password of basic_proxy on a pseudo-terminal."""

    def __init__(self, proxy: FakeServer, tmp_path: Path, env: dict[str, str] | None = None) -> None:
        self.leader, self.follower = pty.openpty()
        self.prompt = f"Proxy password for {USER}@127.0.0.1:{proxy.port}: ".encode()  # the proxy's port too
        pid_file = tmp_path / f"pid-{time.monotonic_ns()}"
        argv = [*NCFD, "-F", "-P", USER, "-X", "connect", "-x", f"127.0.0.1:{proxy.port}", "h", "22"]
        if env is None:
            drop = ("NCFD_PROXY_PASSWORD", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY", "WAYLAND_DISPLAY")
            env = {k: v for k, v in os.environ.items() if k not in drop}
        self.ssh_end, child_end = socket.socketpair()
        self.shell = subprocess.Popen(
            [sys.executable, JOBSHELL, os.ttyname(self.follower), str(pid_file), *argv],
            stdin=child_end.fileno(), stdout=child_end.fileno(), stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        child_end.close()
        self.screen = b""
        deadline = time.monotonic() + WAIT
        while not pid_file.exists():
            assert time.monotonic() < deadline and self.shell.poll() is None, "the job shell did not start ncfd"
            time.sleep(0.01)
        self.pid = int(pid_file.read_text())

    def wait_for_screen(self, text: bytes, count: int = 1) -> None:
        deadline = time.monotonic() + WAIT
        while self.screen.count(text) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never appeared; the screen shows {self.screen!r}"
            if select.select([self.leader], [], [], left)[0]:
                self.screen += os.read(self.leader, 4096)

    def type(self, data: bytes) -> None:
        os.write(self.leader, data)

    def echo(self) -> bool:
        return bool(termios.tcgetattr(self.follower)[3] & termios.ECHO)

    def echo_off(self) -> bool:
        return not self.echo()

    def wait_until(self, condition: str) -> None:
        deadline = time.monotonic() + WAIT
        while not getattr(self, condition)():
            assert time.monotonic() < deadline, f"not {condition} after {WAIT}s; screen: {self.screen!r}"
            time.sleep(0.005)

    def stopped(self) -> bool:
        return Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"

    def received_socket(self) -> bool:
        """Whether ncfd passed a socket that reaches the proxy's banner."""
        try:
            _, passed, extra_fds = receive(self.ssh_end, WAIT)
        except (TimeoutError, OSError):
            return False
        for fd in extra_fds:
            os.close(fd)
        if passed is None:
            return False
        with passed as sock:
            sock.settimeout(WAIT)
            return sock.recv(len(FAKE_TARGET_BANNER), socket.MSG_WAITALL) == FAKE_TARGET_BANNER

    def exit_status(self) -> int:
        """As a shell reports it: 128 + the signal for a death by signal."""
        self.shell.wait(WAIT)
        self.drain()
        return self.shell.returncode

    def drain(self) -> None:
        while select.select([self.leader], [], [], 0.1)[0]:
            try:
                self.screen += os.read(self.leader, 4096)
            except OSError:
                return

    def close(self) -> None:
        if self.leader < 0:
            return
        if self.shell.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.shell.wait(WAIT)
        assert self.shell.stderr is not None
        self.stderr = self.shell.stderr.read().decode()
        self.shell.stderr.close()
        self.ssh_end.close()
        os.close(self.follower)
        os.close(self.leader)
        self.leader = -1


@pytest.fixture
def terminal(basic_proxy: FakeServer, tmp_path: Path) -> Iterator[Terminal]:
    t = Terminal(basic_proxy, tmp_path)
    yield t
    t.close()


def test_an_answer_typed_the_instant_the_prompt_shows_is_taken_and_not_echoed(
    basic_proxy: FakeServer, tmp_path: Path
) -> None:
    runs = 30  # the race lost 1 run in 3 on a busy machine; every run must win now
    for run in range(runs):
        t = Terminal(basic_proxy, tmp_path)
        try:
            t.wait_for_screen(t.prompt)
            t.type(PASSWORD.encode() + b"\n")  # at once, as a password manager does
            passed = t.received_socket()
            status = t.exit_status()
            echo = t.echo()
        finally:
            t.close()
        assert passed and status == 0, f"run {run}: {t.stderr!r}, screen {t.screen!r}"
        assert PASSWORD.encode() not in t.screen, f"run {run}: the password was echoed: {t.screen!r}"
        assert echo, f"run {run}: echo left off"


def test_typeahead_from_before_the_prompt_is_not_taken_as_the_password(terminal: Terminal) -> None:
    """What was typed (and echoed) before the prompt asked for it is discarded, as by
    readpassphrase(3); the answer typed at the prompt is what counts."""
    terminal.type(b"typed too early\n")
    terminal.wait_for_screen(terminal.prompt)
    terminal.type(PASSWORD.encode() + b"\n")
    assert terminal.received_socket()
    assert terminal.exit_status() == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT], ids=lambda s: s.name)
def test_a_signal_at_the_prompt_leaves_echo_on_and_ends_ncfd_by_that_signal(terminal: Terminal, sig: int) -> None:
    terminal.wait_for_screen(terminal.prompt)
    terminal.wait_until("echo_off")
    os.kill(terminal.pid, sig)
    assert terminal.exit_status() == 128 + sig
    assert terminal.echo()
    assert not terminal.received_socket()


def test_ctrl_c_at_the_prompt_leaves_echo_on(terminal: Terminal) -> None:
    terminal.wait_for_screen(terminal.prompt)
    terminal.wait_until("echo_off")
    terminal.type(b"\x03")  # the terminal sends SIGINT to the foreground process group
    assert terminal.exit_status() == 128 + signal.SIGINT
    assert terminal.echo()


def test_ctrl_z_at_the_prompt_restores_echo_while_stopped_and_hides_again_after(terminal: Terminal) -> None:
    terminal.wait_for_screen(terminal.prompt)
    terminal.wait_until("echo_off")
    terminal.type(b"\x1a")  # SIGTSTP: the shell's prompt comes back, with echo on
    terminal.wait_until("stopped")
    assert terminal.echo()
    prompts = terminal.screen.count(terminal.prompt)
    os.kill(terminal.pid, signal.SIGCONT)  # fg
    terminal.wait_until("echo_off")
    terminal.wait_for_screen(terminal.prompt, count=prompts + 1)  # asked again
    terminal.type(PASSWORD.encode() + b"\n")
    assert terminal.received_socket()
    assert terminal.exit_status() == 0
    assert PASSWORD.encode() not in terminal.screen


def test_ctrl_d_at_the_prompt_cancels(terminal: Terminal) -> None:
    terminal.wait_for_screen(terminal.prompt)
    terminal.type(b"\x04")
    assert terminal.exit_status() == 6
    assert terminal.echo()
    terminal.close()
    assert terminal.stderr == "ncfd: proxy password prompt cancelled\n"


def test_an_empty_answer_at_the_prompt_is_refused(terminal: Terminal, basic_proxy: FakeServer) -> None:
    terminal.wait_for_screen(terminal.prompt)
    terminal.type(b"\n")
    assert terminal.exit_status() == 6
    assert terminal.echo()
    terminal.close()
    assert terminal.stderr == f"ncfd: empty proxy password for {USER} at HTTP proxy 127.0.0.1:{basic_proxy.port}\n"


def test_askpass_forced_even_with_a_terminal(basic_proxy: FakeServer, tmp_path: Path) -> None:
    asked = tmp_path / "asked"
    askpass = tmp_path / "askpass"
    askpass.write_text(f'#!/bin/sh\nprintf x >> {asked}\necho "{PASSWORD}"\n')
    askpass.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("NCFD_PROXY_PASSWORD", "DISPLAY")}
    env |= {"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"}
    t = Terminal(basic_proxy, tmp_path, env)
    try:
        assert t.received_socket()
        assert t.exit_status() == 0
    finally:
        t.close()
    assert asked.read_text() == "x"
    assert b"Proxy password" not in t.screen
