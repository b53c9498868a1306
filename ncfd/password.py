"""Where the proxy password comes from, in this order: $NCFD_PROXY_PASSWORD, --proxy-password-file,
the $SSH_ASKPASS program (under ssh's own rules), a prompt on /dev/tty with echo off.

Never stdin: under ssh, stdin is ssh's socket. Asked at most once per run; the deadline is paused
while a person types.
"""

from __future__ import annotations

import os
import stat
import subprocess

from ncfd.errors import AuthFailed, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.deadline import Deadline

ENV = "NCFD_PROXY_PASSWORD"


class Password:
    """The password for user at proxy_name, fetched on first use and then kept."""

    def __init__(self, user: str, proxy_name: str, proxy_host: str, file: str | None, deadline: Deadline) -> None:
        self.user, self.proxy_name, self.proxy_host = user, proxy_name, proxy_host
        self.file, self.deadline = file, deadline
        self._value: str | None = None

    def __call__(self) -> str:
        if self._value is None:
            self._value = self._fetch()
            if not self._value:
                raise AuthFailed(f"empty proxy password for {self.user} at {self.proxy_name}")
        return self._value

    def _fetch(self) -> str:
        if ENV in os.environ:
            return os.environ[ENV]
        if self.file is not None:
            return read_password_file(self.file)
        prompt = f"Proxy password for {self.user}@{self.proxy_host}: "
        self.deadline.pause()
        try:
            return ask(prompt)
        finally:
            self.deadline.resume()


def read_password_file(path: str) -> str:
    """The first line of path, which must be private to its owner, as ssh insists for keys."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise UsageError(f"cannot read proxy password file {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            raise UsageError(
                f"proxy password file {path} is readable by others: chmod 600 it (as ssh requires of keys)"
            )
        line = f.readline(4096)
    return line.rstrip(b"\r\n").decode()


def ask(prompt: str) -> str:
    """ssh's read_passphrase() rules: SSH_ASKPASS when forced, preferred with a display, or when
    there is no terminal and a display; otherwise /dev/tty."""
    display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    require = os.environ.get("SSH_ASKPASS_REQUIRE", "").lower()
    askpass = os.environ.get("SSH_ASKPASS")
    allow = display or require == "force"
    if require == "never":
        allow = False
    use = require == "force" or (require == "prefer" and allow)
    if not use:
        try:
            tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            use = True
        else:
            return _ask_tty(tty, prompt)
    if use and allow and askpass:
        return _ask_program(askpass, prompt)
    raise AuthFailed(
        "cannot ask for the proxy password: no terminal and no SSH_ASKPASS with a display; "
        f"set {ENV} or use --proxy-password-file"
    )


def _ask_program(program: str, prompt: str) -> str:
    try:
        result = subprocess.run([program, prompt], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, check=False)
    except OSError as e:
        raise AuthFailed(f"cannot run SSH_ASKPASS program {program}: {e.strerror}") from None
    if result.returncode != 0:
        raise AuthFailed("proxy password prompt cancelled")
    return result.stdout.decode().split("\n", 1)[0]


def _ask_tty(tty: int, prompt: str) -> str:
    import termios

    with open(tty, "r+b", buffering=0) as f:
        old = termios.tcgetattr(tty)
        new = termios.tcgetattr(tty)
        new[3] &= ~termios.ECHO
        f.write(b"\r" + prompt.encode())
        try:
            termios.tcsetattr(tty, termios.TCSAFLUSH, new)
            line = f.readline(1024)
        finally:
            termios.tcsetattr(tty, termios.TCSAFLUSH, old)
            f.write(b"\n")
    if not line:
        raise AuthFailed("proxy password prompt cancelled")
    return line.rstrip(b"\r\n").decode()
