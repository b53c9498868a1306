"""Without -F: copy stdin to the socket and the socket to stdout, as nc does for a plain ProxyCommand.

Where the platform has splice(2) (Linux; os.splice is Python 3.10+) the bytes never enter this
process: a pipe end (ssh gives a ProxyCommand pipes) is spliced straight to or from the socket, and
two ends that are not pipes (sockets, regular files) are spliced through a pipe of our own. What
splice cannot serve (ttys, character devices, files opened for append, Python 3.9) is read into one
reused buffer and written out.

The socket is non-blocking while the relay runs, so that a peer that stops reading stalls only the
direction towards it: the other direction goes on, and -w still sees the silence. stdin and stdout
stay as they are (their open file descriptions are shared with whoever started us); a write to
stdout may block, as nc's does.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import stat
import time

CHUNK = 1 << 20  # the most one splice() moves; our own pipe is made this big where allowed
COPY_CHUNK = 256 * 1024  # the read/write buffer
# What splice() says when it cannot serve these two descriptors; nothing has moved then.
_UNSPLICEABLE = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP)

SPLICE = "splice"  # straight from src to dst, one of which is a pipe
THROUGH_PIPE = "through a pipe"  # from src into our pipe, from it to dst
COPY = "copy"  # read() into a buffer, write() out of it


class Pump:
    """One direction of the relay. Each step() moves what it can without blocking on the network;
    what src gave and dst has not taken yet is held, in our pipe or in the buffer."""

    def __init__(self, src: int, dst: int, to_network: bool, mode: str) -> None:
        self.src, self.dst = src, dst
        self.to_network = to_network  # dst is the non-blocking socket (else src is)
        self.mode = mode
        self.in_pipe = 0  # bytes held in our pipe
        self.held = memoryview(b"")  # bytes held in the buffer
        self.stalled = False  # SPLICE to the network: it took nothing, wait until it can
        self.buffer = bytearray(COPY_CHUNK if mode == COPY else 0)
        self.pipe: tuple[int, int] | None = None
        if mode == THROUGH_PIPE:
            self.pipe = os.pipe()
            try:
                import fcntl

                fcntl.fcntl(self.pipe[1], fcntl.F_SETPIPE_SZ, CHUNK)
            except (ImportError, AttributeError, OSError):
                pass  # the default size (64 KiB on Linux) works, with more system calls

    def waiting_for(self) -> tuple[int, int]:
        """The descriptor and poll event the next step() needs."""
        if self.in_pipe or self.held or self.stalled:
            return self.dst, select.POLLOUT
        return self.src, select.POLLIN

    def step(self) -> bool:
        """Move bytes after the awaited event; False once src is at its end and nothing is held."""
        if self.mode == SPLICE:
            return self._splice()
        if not (self.in_pipe or self.held):
            try:
                if not self._take():
                    return False
            except BlockingIOError:  # the network had nothing after all
                return True
        self._give()
        return True

    def _splice(self) -> bool:
        try:
            moved = os.splice(self.src, self.dst, CHUNK)
        except BlockingIOError:
            # To the network: it is full, wait until it is writable; but if it was writable and
            # still took nothing, stdin was what had nothing: wait for stdin again.
            self.stalled = self.to_network and not self.stalled
            return True
        except OSError as e:
            if e.errno not in _UNSPLICEABLE:
                raise
            self._become_copy(b"")
            return self.step()
        self.stalled = False
        return moved > 0

    def _take(self) -> int:
        if self.pipe is not None:
            try:
                self.in_pipe = os.splice(self.src, self.pipe[1], CHUNK)
                return self.in_pipe
            except OSError as e:
                if e.errno not in _UNSPLICEABLE:
                    raise
                self._become_copy(b"")
        n = os.readv(self.src, [self.buffer])
        self.held = memoryview(self.buffer)[:n]
        return n

    def _give(self) -> None:
        try:
            while self.in_pipe:
                assert self.pipe is not None
                try:
                    self.in_pipe -= os.splice(self.pipe[0], self.dst, self.in_pipe)
                except OSError as e:
                    if e.errno not in _UNSPLICEABLE:
                        raise
                    # dst takes no splice: what our pipe holds is copied out, and copying goes on.
                    held = b""
                    while len(held) < self.in_pipe:
                        held += os.read(self.pipe[0], self.in_pipe - len(held))
                    self._become_copy(held)
            while self.held:
                self.held = self.held[os.write(self.dst, self.held) :]
        except BlockingIOError:
            pass  # the network is full: waiting_for() now asks for POLLOUT

    def _become_copy(self, held: bytes) -> None:
        self.close()
        self.mode, self.in_pipe, self.pipe = COPY, 0, None
        self.buffer = bytearray(max(COPY_CHUNK, len(held)))
        self.buffer[: len(held)] = held
        self.held = memoryview(self.buffer)[: len(held)]

    def close(self) -> None:
        if self.pipe is not None:
            os.close(self.pipe[0])
            os.close(self.pipe[1])
            self.pipe = None


def pump(src: int, dst: int, to_network: bool) -> Pump:
    """The cheapest way these two descriptors allow to move bytes from src to dst."""
    if not hasattr(os, "splice"):
        return Pump(src, dst, to_network, COPY)
    src_mode, dst_mode = os.fstat(src).st_mode, os.fstat(dst).st_mode
    if stat.S_ISFIFO(src_mode) or stat.S_ISFIFO(dst_mode):
        return Pump(src, dst, to_network, SPLICE)
    if (stat.S_ISSOCK(src_mode) or stat.S_ISREG(src_mode)) and (
        stat.S_ISSOCK(dst_mode) or (stat.S_ISREG(dst_mode) and not _appending(dst))
    ):
        return Pump(src, dst, to_network, THROUGH_PIPE)
    return Pump(src, dst, to_network, COPY)


def _appending(fd: int) -> bool:
    """Opened with O_APPEND (>>), which splice() refuses to write to."""
    import fcntl

    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)


def relay(
    sock: socket.socket,
    *,
    read_stdin: bool,
    half_close: bool,
    quit_after: float | None,
    idle_timeout: float | None,
) -> None:
    """Return when the network side closes (the normal end), stdout goes away, the -q timer runs
    out after stdin's EOF, or nothing moves for idle_timeout seconds."""
    os.set_blocking(1, True)
    net = sock.fileno()
    down = pump(net, 1, to_network=False)
    up = pump(0, net, to_network=True) if read_stdin else None
    sock.setblocking(False)
    try:
        _run(sock, down, up, half_close, quit_after, idle_timeout)
    finally:
        sock.setblocking(True)
        down.close()
        if up is not None:
            up.close()


def _run(
    sock: socket.socket,
    down: Pump,
    up: Pump | None,
    half_close: bool,
    quit_after: float | None,
    idle_timeout: float | None,
) -> None:
    poller = select.poll()
    registered: dict[int, int] = {}
    quit_at: float | None = None
    while True:
        wanted: dict[int, int] = {}
        for p in (down, up):
            if p is not None:
                fd, event = p.waiting_for()
                wanted[fd] = wanted.get(fd, 0) | event
        for fd in set(registered) | set(wanted):
            if fd not in wanted:
                poller.unregister(fd)
            elif fd not in registered:
                poller.register(fd, wanted[fd])
            elif registered[fd] != wanted[fd]:
                poller.modify(fd, wanted[fd])
        registered = wanted
        waits = [w for w in (idle_timeout, None if quit_at is None else quit_at - time.monotonic()) if w is not None]
        ready = dict(poller.poll(None if not waits else max(0.0, min(waits)) * 1000))
        if not ready:
            return
        if _ready(down, ready):
            try:
                if not down.step():
                    return
            except (ConnectionResetError, BrokenPipeError):  # the network reset, or stdout went away
                return
        if up is not None and _ready(up, ready) and not up.step():
            up.close()
            up = None
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            if quit_after is not None:
                quit_at = time.monotonic() + quit_after


def _ready(p: Pump, ready: dict[int, int]) -> bool:
    fd, event = p.waiting_for()
    return bool(ready.get(fd, 0) & (event | select.POLLHUP | select.POLLERR | select.POLLNVAL))
