"""Hand the connected socket to ssh over stdout (ProxyUseFdpass): one byte, one SCM_RIGHTS."""

from __future__ import annotations

import errno
import os
import socket
import stat

from ncfd.errors import FdPassError

_NEEDS_SSH = "-F needs stdout to be the unix socket ssh gives a ProxyCommand with ProxyUseFdpass yes"


def claim_stdout() -> socket.socket:
    """Take stdout for the hand-off, before any network work, and point fd 1 at stderr so that no
    stray write can reach ssh ahead of the descriptor."""
    if os.isatty(1):
        raise FdPassError(f"{_NEEDS_SSH}; stdout is a terminal")
    try:
        fd = os.dup(1)
    except OSError:
        raise FdPassError(f"{_NEEDS_SSH}, and stdout is closed") from None
    try:
        out = socket.socket(fileno=fd)
    except OSError:
        kind = _describe(fd)
        os.close(fd)
        raise FdPassError(f"{_NEEDS_SSH}; stdout is {kind}") from None
    if out.family != socket.AF_UNIX:
        out.close()
        raise FdPassError(f"{_NEEDS_SSH}; stdout is a network socket")
    os.dup2(2, 1)
    return out


def given_as_to_fdpass() -> bool:
    """Whether stdin and stdout are one unix stream socket, as ssh gives a ProxyCommand with
    ProxyUseFdpass yes (a relaying ssh gives two pipes): for the relay's failure when -F is missing,
    ssh having read our first bytes where it wanted a descriptor, and closed."""
    try:
        fd0, fd1 = os.fstat(0), os.fstat(1)
        if not stat.S_ISSOCK(fd1.st_mode) or (fd0.st_dev, fd0.st_ino) != (fd1.st_dev, fd1.st_ino):
            return False
        with socket.socket(fileno=os.dup(1)) as out:
            return out.family == socket.AF_UNIX and out.type == socket.SOCK_STREAM
    except OSError:
        return False


def _describe(fd: int) -> str:
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISREG(mode):
        return "a file"
    return "not a socket"


def pass_fd(out: socket.socket, sock: socket.socket) -> None:
    sock.setblocking(True)
    out.setblocking(True)
    try:
        socket.send_fds(out, [b"\0"], [sock.fileno()])
    except OSError as e:
        if e.errno in (errno.EPIPE, errno.ECONNRESET):
            raise FdPassError("ssh closed its end of stdout before the socket could be passed") from None
        raise FdPassError(f"sendmsg: {e.strerror}") from None
