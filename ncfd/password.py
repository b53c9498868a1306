"""Where the proxy password comes from, in this order: the proxy's own entry in --proxy-netrc (its
host and user), $NCFD_PROXY_PASSWORD, --proxy-password-file, the $SSH_ASKPASS program (under ssh's
own rules), a prompt on /dev/tty with echo off. The netrc file is the one source that tells proxies
apart: the others give every proxy of a chain the same password.

Never stdin: under ssh, stdin is ssh's socket. Asked at most once per run; the deadline is paused
while a person types.

The passphrase of an encrypted TLS client key (--proxy-key) comes from $NCFD_PROXY_KEY_PASSPHRASE,
then the same $SSH_ASKPASS program or /dev/tty prompt.
"""

from __future__ import annotations

import os

from ncfd.errors import AuthFailed, UsageError
from ncfd.files import read_private
from ncfd.log import quiet
from ncfd.render import host_port

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ncfd.deadline import Deadline
    from ncfd.log import Log
    from ncfd.proxies import Proxy

ENV = "NCFD_PROXY_PASSWORD"
KEY_ENV = "NCFD_PROXY_KEY_PASSPHRASE"


class Password:
    """The password for user at proxy, fetched on first use and then kept."""

    def __init__(
        self, user: str, proxy: Proxy, file: str | None, deadline: Deadline, netrc: str | None, log: Log = quiet
    ) -> None:
        self.user, self.proxy = user, proxy
        self.file, self.deadline, self.netrc, self.log = file, deadline, netrc, log
        self._value: str | None = None

    def __call__(self) -> str:
        if self._value is None:
            self._value = self._fetch()
            if not self._value:
                raise AuthFailed(f"empty proxy password for {self.user} at {self.proxy}")
        return self._value

    def _fetch(self) -> str:
        whose = f"the password for {self.user} at {self.proxy}"
        if self.netrc is not None:
            login, password = netrc_entry(self.netrc, self.proxy.host, self.log)
            if password is not None and login in (None, self.user):
                self.log(f"{whose}: from --proxy-netrc file {self.netrc}, machine {self.proxy.host}")
                return password
            if password is not None:
                self.log(f"--proxy-netrc file {self.netrc}: machine {self.proxy.host} is for login {login}, not"
                         f" {self.user}")  # fmt: skip
        if ENV in os.environ:
            self.log(f"{whose}: from {ENV}")
            return os.environ[ENV]
        if self.file is not None:
            self.log(f"{whose}: from --proxy-password-file {self.file}")
            return read_password_file(self.file)
        self.log(f"{whose}: asking for it")
        prompt = f"Proxy password for {self.user}@{host_port(self.proxy.host, self.proxy.port)}: "
        self.deadline.pause()
        try:
            return ask(prompt)
        finally:
            self.deadline.resume()


def key_passphrase(key: str) -> Callable[[Deadline], str]:
    """The source of the passphrase of the TLS client key in the file key: asked once, when first
    called (OpenSSL calls it only for an encrypted key)."""
    kept: list[str] = []

    def passphrase(deadline: Deadline) -> str:
        if not kept:
            if KEY_ENV in os.environ:
                kept.append(os.environ[KEY_ENV])
            else:
                deadline.pause()
                try:
                    kept.append(ask(f"Passphrase for the TLS client key {key}: ", "TLS client key passphrase", KEY_ENV))
                finally:
                    deadline.resume()
        return kept[0]

    return passphrase


def netrc_entry(path: str, host: str, log: Log = quiet) -> tuple[str | None, str | None]:
    """(login, password) of the machine entry for host in the netrc file at path ("default" is
    not used: a proxy gets only what is meant for it). log hears that none matched, and why not."""
    hosts = _netrc_hosts(path)
    entry = hosts.get(host)
    if entry is None:
        # machine proxy:3128 is a natural mistake, and would never match.
        ported = [name for name in hosts if name.rpartition(":")[0].strip("[]") == host]
        why = f" (machine {ported[0]} has a port: write the host alone)" if ported else ""
        log(f"--proxy-netrc file {path}: no machine {host} in it{why}")
        return None, None
    login, _, password = entry
    return login or None, password or None


_netrc_read: dict[str, dict[str, tuple[str, str, str]]] = {}


def _netrc_hosts(path: str) -> dict[str, tuple[str, str, str]]:
    """The file's entries, read once per run (each hop asks for its user, then its password); the
    file must be private to its owner."""
    if path not in _netrc_read:
        try:
            text = read_private(path, "--proxy-netrc file").decode()
        except UnicodeDecodeError:
            raise UsageError(f"--proxy-netrc file {path} is not UTF-8 text") from None
        _netrc_read[path] = parse_netrc(text, f"--proxy-netrc file {path}")
    return _netrc_read[path]


def parse_netrc(text: str, name: str) -> dict[str, tuple[str, str, str]]:
    """machine name -> (login, account, password), as Python 3.11's netrc module reads them (words,
    "quoted words" and backslash escapes, macdef blocks up to an empty line, the last entry of a
    name winning), and # comments to the end of the line where a keyword belongs. Not that module:
    it opens the file by its name (we parse what we read from the descriptor whose mode we checked),
    its errors quote the word they stumble on (as often as not the end of a password with a space in
    it), and 3.10's takes quotes for letters."""
    hosts: dict[str, tuple[str, str, str]] = {}
    words = _Words(text.replace("\r\n", "\n"))
    fields = {"login": 0, "user": 0, "account": 1, "password": 2}
    machine: str | None = None  # the entry being read
    while (word := words.next()) is not None:
        if word.startswith("#"):
            words.skip_line()
        elif word in ("machine", "default", "macdef"):
            machine = words.next() if word != "default" else "default"
            if not machine:
                raise UsageError(f"{name}: {word} without a name (line {words.line})")
            if word == "macdef":
                machine = None
                words.skip_macro()
            else:
                hosts[machine] = ("", "", "")
        elif machine is not None and word in fields:
            entry = list(hosts[machine])
            entry[fields[word]] = words.next() or ""
            hosts[machine] = (entry[0], entry[1], entry[2])
        else:
            # Not quoted here: it is likely the rest of a password.
            raise UsageError(f"{name}: line {words.line} has a word where a netrc keyword belongs (a password"
                             ' with spaces goes in double quotes: password "two words")')  # fmt: skip
    return hosts


class _Words:
    """The words of a netrc file, and the line the last one ended on."""

    def __init__(self, text: str) -> None:
        self.text, self.at, self.line = text, 0, 1

    def next(self) -> str | None:
        """The next word, "quoted" or not, a backslash taking the next character as it is; None at
        the end."""
        text, end = self.text, len(self.text)
        while self.at < end and text[self.at] in " \t\r\n":
            self.line += text[self.at] == "\n"
            self.at += 1
        if self.at >= end:
            return None
        quoted = text[self.at] == '"'
        self.at += quoted
        word = []
        while self.at < end and (text[self.at] != '"' if quoted else text[self.at] not in " \t\r\n"):
            if text[self.at] == "\\" and self.at + 1 < end:
                self.at += 1
            self.line += text[self.at] == "\n"
            word.append(text[self.at])
            self.at += 1
        self.at += quoted  # the closing quote
        return "".join(word)

    def skip_line(self) -> None:
        newline = self.text.find("\n", self.at)
        self.at = len(self.text) if newline < 0 else newline

    def skip_macro(self) -> None:
        """A macro's lines, up to an empty line (or the end)."""
        blank = self.text.find("\n\n", self.at)
        stop = len(self.text) if blank < 0 else blank + 2
        self.line += self.text.count("\n", self.at, stop)
        self.at = stop


def read_password_file(path: str) -> str:
    """The first line of path, which must be private to its owner."""
    line = read_private(path, "proxy password file", 4096).split(b"\n", 1)[0]
    return line.rstrip(b"\r").decode()


def ask(prompt: str, what: str = "proxy password", env: str = ENV) -> str:
    """ssh's read_passphrase() rules: SSH_ASKPASS when forced, preferred with a display, or when
    there is no terminal and a display; otherwise /dev/tty. what names the secret in messages, env
    the variable that gives it instead."""
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
            return _ask_tty(tty, prompt, what)
    if use and allow and askpass:
        return _ask_program(askpass, prompt, what)
    fix = f"set {env}" + (" or use --proxy-password-file" if env == ENV else "")
    raise AuthFailed(f"cannot ask for the {what}: no terminal and no SSH_ASKPASS with a display; {fix}")


def _ask_program(program: str, prompt: str, what: str) -> str:
    try:
        import subprocess

        result = subprocess.run([program, prompt], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, check=False)
    except OSError as e:
        raise AuthFailed(f"cannot run SSH_ASKPASS program {program}: {e.strerror}") from None
    if result.returncode != 0:
        raise AuthFailed(f"{what} prompt cancelled")
    return result.stdout.decode().split("\n", 1)[0]


def _ask_tty(tty: int, prompt: str, what: str) -> str:
    """readpassphrase(3)'s order: echo off first, then the prompt, so that nothing typed the
    instant the prompt shows is lost or echoed; the terminal is restored on every way out,
    signals included."""
    import termios

    old = termios.tcgetattr(tty)
    quiet = termios.tcgetattr(tty)
    quiet[3] &= ~(termios.ECHO | termios.ECHONL)

    def hide() -> None:
        # TCSAFLUSH: what was typed before the prompt was shown (and echoed) is not the answer.
        termios.tcsetattr(tty, termios.TCSAFLUSH, quiet)
        os.write(tty, b"\r" + prompt.encode())

    def restore() -> None:
        # TCSADRAIN, not TCSAFLUSH: what is typed after the answer belongs to whoever reads next (ssh).
        termios.tcsetattr(tty, termios.TCSADRAIN, old)
        os.write(tty, b"\n")

    try:
        with _restoring_on_signals(restore, hide):
            hide()
            line = _read_line(tty)
        restore()
    finally:
        os.close(tty)
    if not line:
        raise AuthFailed(f"{what} prompt cancelled")
    return line.rstrip(b"\r\n").decode()


def _read_line(tty: int) -> bytes:
    """One canonical-mode line, at most 1 KiB; b"" on end of file (Ctrl-D)."""
    line = b""
    while not line.endswith(b"\n") and len(line) < 1024:
        chunk = os.read(tty, 1024 - len(line))
        if not chunk:
            break
        line += chunk
    return line


# Signals that end the process (or stop it) while the terminal has echo off.
_FATAL = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
_STOP = "SIGTSTP"


class _restoring_on_signals:
    """While the prompt is up: on a fatal signal, restore the terminal and die of the same signal
    (so the exit status says what happened); on Ctrl-Z, restore, stop, and hide again on resuming.
    Signal handlers belong to the main thread: elsewhere (never the CLI) nothing is installed."""

    def __init__(self, restore: Callable[[], None], hide: Callable[[], None]) -> None:
        self.restore, self.hide = restore, hide
        self.saved: dict[int, object] = {}

    def __enter__(self) -> None:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        for name in (*_FATAL, _STOP):
            number = getattr(signal, name, None)
            if number is not None:
                self.saved[number] = signal.signal(number, self._caught)

    def __exit__(self, *exc: object) -> None:
        import signal

        for number, handler in self.saved.items():
            signal.signal(number, handler)  # type: ignore[arg-type]

    def _caught(self, number: int, frame: object) -> None:
        import signal

        self.restore()
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)  # fatal: the process ends here, with the signal's status
        # Only a stop comes back, on SIGCONT.
        signal.signal(number, self._caught)
        self.hide()
