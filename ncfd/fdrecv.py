"""ncfd-fdrecv: the receiving side of ProxyUseFdpass, as ssh does it, for trying and testing dialers.

It runs DIALER with one end of a unix socketpair on its stdin and stdout (stderr inherited), receives
one byte and one SCM_RIGHTS descriptor (ssh's mm_receive_fd), waits for DIALER to exit (ssh's
waitpid), then relays the socket to stdin/stdout or execs a program on it. Everything ssh would
fail on, or hang on, is one line on stderr and a distinct exit status.

Start-up is kept light (this is also a benchmark helper): only os, sys, socket and signal are imported
before the dialer runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time

from ncfd.log import quiet, stderr_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from ncfd.log import Log

PROG = "ncfd-fdrecv"
DEFAULT_DEADLINE = 60.0
KILL_GRACE = 1.0  # after SIGTERM, before SIGKILL
EOF_GRACE = 1.0  # a dialer that closed its stdout has this long to exit before it is killed
DRAIN_QUIET = 0.2  # after a plain byte: how long to wait for more before counting what came
DRAIN_LIMIT = 1 << 20
MAX_FDS = 8  # room for this many descriptors, so that extras are received (and closed), not dropped

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70
EXIT_TIMEOUT = 124
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127

USAGE = f"usage: {PROG} [-hv] [--version] [-w seconds] [--exec PROG [ARG ...] --] [--] DIALER [ARG ...]"

HELP = f"""{USAGE}

Run DIALER the way ssh runs a ProxyCommand with ProxyUseFdpass yes: one end of a unix socketpair
on its stdin and stdout, stderr inherited. Receive the socket it passes (exactly one byte and one
SCM_RIGHTS descriptor, as ssh requires), wait for DIALER to exit, as ssh does, then:

  by default    relay the socket to stdin/stdout, as nc does: stdin's end of file half-closes
                the socket, and the socket's end of file ends the run (exit 0). So with stdin
                </dev/null, an HTTP proxy (squid, tinyproxy) ends the tunnel before a server
                slower than the proxy has said a word: nothing is printed, and the exit is 0.
                Keep stdin open instead: sleep 5 | {PROG} ...
  with --exec   exec PROG with the socket as its stdin and stdout (made blocking, as a program
                expects of them); PROG replaces {PROG}, so no process is left in between

DIALER runs directly, not through a shell (ssh uses "$SHELL -c 'exec ...'"; write sh -c '...'
for that). Its exit status is ignored, as ssh ignores it, but a non-zero one after passing the
socket draws a warning.

options (all before DIALER):
  -h, --help    this help, on stdout
  --version     the version (ncfd's), on stdout
  -v            narrate on stderr: the dialer's pid, the descriptor received (family, addresses,
                blocking mode), how long the hand-off and the exit took
  -w seconds    deadline for DIALER to pass the descriptor and exit (default {DEFAULT_DEADLINE:g});
                on expiry DIALER is killed (SIGTERM, then SIGKILL). 0 waits for ever, as ssh does
  --exec PROG [ARG ...] --
                must come last: every argument up to the first "--" is PROG and its ARGs, every
                argument after it is DIALER and its. To give PROG a "--" of its own, wrap it:
                --exec sh -c 'exec PROG -- ...' --
  --            ends the options; needed before a DIALER whose name starts with "-"

exit status:
  0     the relay ended with the connection (with --exec: PROG's own status)
  1     DIALER failed: it exited or closed its stdout without passing a descriptor, wrote bytes
        without one, or passed more than one; or the relay failed
  2     usage
  124   timed out (-w): DIALER was killed
  126   DIALER or PROG cannot be executed
  127   DIALER or PROG not found

examples:
  sleep 5 | {PROG} ncfd -F -X connect -x proxy.example:3128 example.com 22
  {PROG} -w 10 nc.openbsd -F -X connect -x proxy.example:3128 example.com 22
  {PROG} --exec sh -c 'read banner; echo "$banner"' -- ncfd -F -X connect -x proxy:3128 host 22"""


class Failure(Exception):
    """One line for stderr (without the prefix) and the exit status."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _say(message: str) -> None:
    stderr_line(f"{PROG}: {message}")


# --- command line -------------------------------------------------------------------------------


class Options:
    def __init__(self) -> None:
        self.help = False
        self.version = False
        self.verbose = False
        self.deadline: float | None = DEFAULT_DEADLINE
        self.exec_argv: list[str] | None = None
        self.dialer: list[str] = []


def parse_args(argv: list[str]) -> Options:
    opts = Options()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            break
        if arg == "--help":
            opts.help = True
            return opts
        if arg == "--version":
            opts.version = True
            return opts
        if arg == "--exec":
            try:
                end = argv.index("--", i)
            except ValueError:
                raise Failure('--exec PROG ... must be ended by "--", then DIALER', EXIT_USAGE) from None
            if end == i:
                raise Failure("--exec needs a program before its --", EXIT_USAGE)
            opts.exec_argv = argv[i:end]
            i = end + 1
            break
        if not arg.startswith("-"):
            i -= 1  # DIALER
            break
        if arg == "-" or arg.startswith("--"):
            raise Failure(f"unknown option {arg}; {USAGE}", EXIT_USAGE)
        # Clustered short options: -vw5, -v -w 5.
        flags = arg[1:]
        while flags:
            flag, flags = flags[0], flags[1:]
            if flag == "h":
                opts.help = True
                return opts
            if flag == "v":
                opts.verbose = True
            elif flag == "w":
                if not flags:
                    if i == len(argv):
                        raise Failure("-w needs a number of seconds", EXIT_USAGE)
                    flags = argv[i]
                    i += 1
                opts.deadline = _seconds(flags)
                flags = ""
            else:
                raise Failure(f"unknown option -{flag}; {USAGE}", EXIT_USAGE)
    opts.dialer = argv[i:]
    if not opts.dialer:
        raise Failure(f"no DIALER given; {USAGE}", EXIT_USAGE)
    return opts


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):  # also NaN
        raise Failure(f'-w wants a number of seconds (0: for ever), not "{text}"', EXIT_USAGE)
    return value or None


# --- running the dialer -------------------------------------------------------------------------


def _find_program(name: str) -> tuple[str | None, int]:
    """Where execvp would find name: (path, 0), or (None, errno) as exec would fail."""
    import errno

    if "/" in name:
        candidates = [name]
    else:
        path = os.environ.get("PATH", os.defpath)
        candidates = [os.path.join(d or ".", name) for d in path.split(os.pathsep)]
    failure = errno.ENOENT
    for candidate in candidates:
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate, 0
            failure = errno.EACCES
        elif os.path.isdir(candidate) and "/" in name:
            failure = errno.EACCES
    return None, failure


def _cannot_run(name: str, err: int) -> Failure:
    import errno

    code = EXIT_NOT_FOUND if err == errno.ENOENT else EXIT_CANNOT_EXECUTE
    return Failure(f"cannot run {name}: {os.strerror(err)}", code)


def _spawn(dialer: list[str], end: socket.socket) -> int:
    """Start dialer with end on its fd 0 and fd 1, signals as a fresh process expects them."""
    fd = end.fileno()
    actions = [(os.POSIX_SPAWN_DUP2, fd, 0), (os.POSIX_SPAWN_DUP2, fd, 1)]
    try:
        return os.posix_spawnp(dialer[0], dialer, os.environ, file_actions=actions, setsigdef=_DEFAULT_SIGNALS)
    except OSError as e:
        raise _cannot_run(dialer[0], e.errno or 0) from None


# Python ignores SIGPIPE (and SIGXFSZ); a spawned or exec'd program must not inherit that.
_DEFAULT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name))


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"was killed by {name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def _wait(pid: int, until: float | None) -> int | None:
    """waitpid until the monotonic time until; the wait status, or None if pid is still running."""
    if until is None:
        return os.waitpid(pid, 0)[1]
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        return status
    pidfd = -1
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:  # a kernel without pidfd (before Linux 5.3)
            pidfd = -1
    if pidfd >= 0:
        import select

        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.poll(max(0.0, until - time.monotonic()) * 1000)
        finally:
            os.close(pidfd)
        done, status = os.waitpid(pid, os.WNOHANG)
        return status if done else None
    pause = 0.0005
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        left = until - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.02)


def _kill(pid: int) -> int:
    """SIGTERM, a grace period, then SIGKILL; reap it and return its wait status."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    status = _wait(pid, time.monotonic() + KILL_GRACE)
    if status is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        status = os.waitpid(pid, 0)[1]
    return status


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _drain(sock: socket.socket, until: float | None) -> bytes:
    """What else the dialer writes, until its end of file, a quiet spell or the limit."""
    data = bytearray()
    while len(data) < DRAIN_LIMIT:
        wait = DRAIN_QUIET if until is None else min(DRAIN_QUIET, until - time.monotonic())
        if wait <= 0:
            break
        sock.settimeout(wait)
        try:
            chunk = sock.recv(DRAIN_LIMIT - len(data))
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _preview(data: bytes, limit: int = 60) -> str:
    """data[:limit] in double quotes, printable ASCII as is, the rest escaped."""
    escapes = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord("\\"): "\\\\", ord('"'): '\\"'}
    text = "".join(escapes.get(b) or (chr(b) if 32 <= b < 127 else f"\\x{b:02x}") for b in data[:limit])
    return f'"{text}"' + ("..." if len(data) > limit else "")


def receive(opts: Options, log: Log) -> int:
    """Run the dialer and return the descriptor it passed, after it exited."""
    name = opts.dialer[0]
    start = time.monotonic()
    until = None if opts.deadline is None else start + opts.deadline
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        pid = _spawn(opts.dialer, theirs)
    finally:
        theirs.close()
    log(f"started {name}, pid {pid}")

    try:
        # Not 0 once the deadline has passed: that would make the socket non-blocking, not time out.
        ours.settimeout(None if until is None else max(1e-6, until - time.monotonic()))
        try:
            payload, fds, flags, _ = socket.recv_fds(ours, 1, MAX_FDS)
        except TimeoutError:
            raise _timed_out(name, pid, opts.deadline) from None
        except OSError as e:  # ECONNRESET and the like: no descriptor is coming
            payload, fds, flags = b"", [], 0
            log(f"recvmsg: {e.strerror or e}")
        received = time.monotonic()

        if not fds:
            if payload:
                data = payload + _drain(ours, until)
                status = _wait(pid, time.monotonic())
                if status is None:
                    _kill(pid)
                raise Failure(
                    f"{name} sent {len(data)} byte{'' if len(data) == 1 else 's'} but no descriptor: is it an"
                    f" fd-passing dialer (nc -F, ncfd -F)? It sent {_preview(data)}"
                )
            grace = received + EOF_GRACE
            status = _wait(pid, grace if until is None else min(until, grace))
            if status is None:
                _kill(pid)
                raise Failure(f"{name} closed its stdout without passing a descriptor, and did not exit; killed it")
            raise Failure(f"{name} {_describe_status(status)} without passing a descriptor")

        if len(fds) != 1 or flags & socket.MSG_CTRUNC:
            _close_all(fds)
            if _wait(pid, time.monotonic()) is None:
                _kill(pid)
            count = f"{len(fds)}" + (" or more" if flags & socket.MSG_CTRUNC else "")
            raise Failure(f"{name} passed {count} descriptors; ssh expects exactly one")
        fd = fds[0]
        if opts.verbose:
            log(f"received after {_ms(received - start)}: {_describe_fd(fd)}")
    finally:
        ours.close()  # as ssh closes its end after mm_receive_fd

    status = _wait(pid, until)
    if status is None:
        os.close(fd)
        _kill(pid)
        raise Failure(
            f"{name} passed a descriptor but did not exit within {opts.deadline:g}s (ssh would wait for it"
            " for ever); killed it",
            EXIT_TIMEOUT,
        )
    log(f"{name} {_describe_status(status)} after {_ms(time.monotonic() - start)}")
    if status != 0:
        _say(f"warning: {name} passed a descriptor but {_describe_status(status)} (ssh ignores this)")
    return fd


def _timed_out(name: str, pid: int, deadline: float | None) -> Failure:
    status = _wait(pid, time.monotonic())
    if status is None:
        _kill(pid)
        return Failure(f"{name} passed no descriptor within {deadline:g}s; killed it", EXIT_TIMEOUT)
    # It exited, but something it started still holds its stdout open (ssh would wait for ever).
    return Failure(
        f"{name} {_describe_status(status)}, but its stdout stayed open (a process it left behind?) and no"
        f" descriptor came within {deadline:g}s",
        EXIT_TIMEOUT,
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _describe_fd(fd: int) -> str:
    import stat

    mode = os.fstat(fd).st_mode
    blocking = "blocking" if os.get_blocking(fd) else "non-blocking"
    if not stat.S_ISSOCK(mode):
        kind = "a pipe" if stat.S_ISFIFO(mode) else "a file" if stat.S_ISREG(mode) else "not a socket"
        return f"descriptor {fd}: {kind}, {blocking}"
    sock = socket.socket(fileno=fd)
    try:
        family = {socket.AF_INET: "TCP/IPv4", socket.AF_INET6: "TCP/IPv6", socket.AF_UNIX: "unix"}.get(
            sock.family, str(sock.family)
        )
        try:
            local, peer = sock.getsockname(), sock.getpeername()
        except OSError as e:
            return f"descriptor {fd}: {family} socket, not connected ({e.strerror}), {blocking}"
        return f"descriptor {fd}: {family} socket {_addr(local)} -> {_addr(peer)}, {blocking}"
    finally:
        sock.detach()


def _addr(addr: object) -> str:
    if isinstance(addr, tuple):
        from ncfd.render import host_port

        return host_port(addr[0], addr[1])
    return repr(addr)


# --- using the socket ---------------------------------------------------------------------------


def exec_on(fd: int, argv: list[str], log: Log) -> NoReturn:
    os.set_blocking(fd, True)
    os.dup2(fd, 0)
    os.dup2(fd, 1)
    if fd > 2:
        os.close(fd)
    for sig in _DEFAULT_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    log(f"exec {argv[0]} on the socket")
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        raise _cannot_run(argv[0], e.errno or 0) from None


def relay_on(fd: int, log: Log) -> int:
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        os.close(fd)
        raise Failure("the descriptor passed is not a socket; nothing to relay") from None
    from ncfd.net.relay import relay

    sock.setblocking(True)  # nc passes it non-blocking
    log("relaying stdin/stdout")
    try:
        relay(sock, read_stdin=True, half_close=True, quit_after=None, idle_timeout=None)
    except OSError as e:
        raise Failure(f"relay failed: {e.strerror or e}") from None
    finally:
        sock.close()
    log("the connection ended")
    return EXIT_OK


def _sanitise_stdfds() -> None:
    """Keep fds 0-2 open (on /dev/null), as ssh does, so that no socket of ours lands on them."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _run(argv: list[str]) -> int:
    opts = parse_args(argv)
    if opts.help or opts.version:
        from ncfd.version import __version__

        sys.stdout.write((HELP if opts.help else f"{PROG} {__version__}") + "\n")
        sys.stdout.flush()
        return EXIT_OK
    log: Log = _say if opts.verbose else quiet
    _sanitise_stdfds()
    if opts.exec_argv is not None:
        # Fail before the dialer connects anywhere.
        path, err = _find_program(opts.exec_argv[0])
        if path is None:
            raise _cannot_run(opts.exec_argv[0], err)
    fd = receive(opts, log)
    if opts.exec_argv is not None:
        exec_on(fd, opts.exec_argv, log)
    return relay_on(fd, log)


def main(argv: list[str] | None = None) -> int:
    # A fresh tool's Ctrl-C: die by the signal, no KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    except Failure as e:
        _say(str(e))
        return e.exit_code
    except Exception as e:  # a bug of ours: one line, no traceback
        _say(f"internal error ({type(e).__name__}: {e}); please report it with the command line")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
