"""The one relay: without -F, stdin to the connection and the connection to stdout, as nc does for a
plain ProxyCommand; and its pumps, for an HTTPS proxy, between the TLS session and the socket handed
on (ncfd.net.bridge).

From the network, where the platform has splice(2) (Linux), the bytes
never enter this process: they are spliced straight into stdout when it is a pipe (ssh gives a
ProxyCommand pipes), or through a pipe of our own into a socket or a regular file. Everything else
is read into one reused buffer and written out: towards the network (measured: a pipe's pages
spliced into TCP go out slower than copied ones), to ttys, character devices and files opened for
append, and where there is no splice(2). Pipes on stdin and stdout are enlarged to PIPE_SIZE where
the system allows: each system call then moves more.

The sockets are non-blocking while the relay runs, so that a peer that stops reading stalls only
the direction towards it: the other direction goes on, and -w still sees the silence. stdin and
stdout stay blocking (their open file descriptions are shared with whoever started us); a write to
stdout may block, as nc's does.

A TLS session (an HTTPS proxy) is read and written through its ssl object, which may need the
other direction of the socket to make progress (SSLWantRead on a write, SSLWantWrite on a read),
and holds decrypted bytes that poll() cannot see: a pump waits for what the ssl object asked for,
and drains its pending bytes before polling again.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import stat
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

CHUNK = 1 << 20  # the most one splice() asks for; the pipe's room limits it
PIPE_SIZE = 256 * 1024  # pipes are charged to the user's pipe-user-pages quota: not more
COPY_CHUNK = PIPE_SIZE  # the read/write buffer
# What splice() says when it cannot serve these two descriptors; nothing has moved then.
_UNSPLICEABLE = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP)

TLS_CHUNK = 16 * 1024  # one TLS record: a retried write must offer the same bytes again

SPLICE = "splice"  # straight from the network to a pipe
THROUGH_PIPE = "through a pipe"  # from src into our pipe, from it to dst
COPY = "copy"  # read() into a buffer, write() out of it


class Pump:
    """One direction of the relay. Each step() moves what it can without blocking on the network;
    what src gave and dst has not taken yet is held, in our pipe or in the buffer. SPLICE is only
    for src the (non-blocking) network: its EAGAIN means that the network had nothing."""

    def __init__(self, src: int, dst: int, mode: str, tls: ssl.SSLSocket | None = None) -> None:
        self.src, self.dst = src, dst
        self.mode = mode
        # The TLS session src or dst is (COPY mode), and the socket event it asked for, if any.
        self.tls_src = tls if tls is not None and tls.fileno() == src else None
        self.tls_dst = tls if tls is not None and tls.fileno() == dst else None
        self.want: tuple[int, int] | None = None
        self.want_event: dict[type[BaseException], int] = {}
        # What writing to dst meets once the other end has closed the connection or reset it.
        self.closed_errors: tuple[type[OSError], ...] = (BrokenPipeError, ConnectionResetError)
        if tls is not None:
            import ssl  # only for an HTTPS proxy: start-up time

            self.want_event = {ssl.SSLWantReadError: select.POLLIN, ssl.SSLWantWriteError: select.POLLOUT}
            self.closed_errors += (ssl.SSLZeroReturnError, ssl.SSLEOFError)
        self.want_errors = tuple(self.want_event)
        self.in_pipe = 0  # bytes held in our pipe
        self.held = memoryview(b"")  # bytes held in the buffer
        self.buffer = bytearray(COPY_CHUNK if mode == COPY else 0)
        self.pipe: tuple[int, int] | None = None
        if mode == THROUGH_PIPE:
            self.pipe = os.pipe()
            enlarge_pipe(self.pipe[1])

    def waiting_for(self) -> tuple[int, int]:
        """The descriptor and poll event the next step() needs."""
        if self.want is not None:
            return self.want
        if self.holds():
            return self.dst, select.POLLOUT
        return self.src, select.POLLIN

    def holds(self) -> bool:
        """Whether bytes taken from src wait for dst."""
        return bool(self.in_pipe or self.held)

    def ready_now(self) -> bool:
        """Whether step() can move bytes without waiting: decrypted bytes held by the TLS object."""
        return self.tls_src is not None and not self.held and self.want is None and self.tls_src.pending() > 0

    def due(self, ready: dict[int, int]) -> bool:
        """Whether step() can go on, given the events a Poller returned."""
        if self.ready_now():
            return True
        fd, event = self.waiting_for()
        return bool(ready.get(fd, 0) & (event | select.POLLHUP | select.POLLERR | select.POLLNVAL))

    def step(self) -> bool:
        """Move bytes after the awaited event; False once src is at its end and nothing is held."""
        if self.mode == SPLICE:
            return self._splice()
        self.want = None
        if not (self.in_pipe or self.held):
            try:
                if not self._take():
                    return False
            except BlockingIOError:  # the network had nothing after all
                return True
            except self.want_errors as e:  # the TLS session needs the socket readable or writable first
                self.want = (self.src, self.want_event[type(e)])
                return True
        self._give()
        return True

    def _splice(self) -> bool:
        try:
            return os.splice(self.src, self.dst, CHUNK) > 0
        except BlockingIOError:  # the network had nothing after all
            return True
        except OSError as e:
            if e.errno not in _UNSPLICEABLE:
                raise
        self._become_copy(b"")
        return self.step()

    def _take(self) -> int:
        if self.pipe is not None:
            try:
                self.in_pipe = os.splice(self.src, self.pipe[1], CHUNK)
                return self.in_pipe
            except OSError as e:
                if e.errno not in _UNSPLICEABLE:
                    raise
                self._become_copy(b"")
        n = self.tls_src.recv_into(self.buffer) if self.tls_src is not None else os.readv(self.src, [self.buffer])
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
                if self.tls_dst is not None:
                    self.held = self.held[self.tls_dst.send(self.held[:TLS_CHUNK]) :]
                else:
                    self.held = self.held[os.write(self.dst, self.held) :]
        except BlockingIOError:
            pass  # the network is full: waiting_for() now asks for POLLOUT
        except self.want_errors as e:
            self.want = (self.dst, self.want_event[type(e)])

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


def pump(src: int, dst: int, to_network: bool, tls: ssl.SSLSocket | None = None) -> Pump:
    """The cheapest way these two descriptors allow to move bytes from src to dst."""
    if to_network or tls is not None or not hasattr(os, "splice"):
        return Pump(src, dst, COPY, tls)
    mode = os.fstat(dst).st_mode
    if stat.S_ISFIFO(mode):
        return Pump(src, dst, SPLICE)
    if stat.S_ISSOCK(mode) or (stat.S_ISREG(mode) and not _appending(dst)):
        return Pump(src, dst, THROUGH_PIPE)
    return Pump(src, dst, COPY)


def enlarge_pipe(fd: int) -> None:
    """Give the pipe fd PIPE_SIZE bytes of room, if it is a smaller pipe and the system allows."""
    try:
        import fcntl

        # Linux only.
        get, set_ = getattr(fcntl, "F_GETPIPE_SZ", None), getattr(fcntl, "F_SETPIPE_SZ", None)
        if get is None or set_ is None or not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
        if fcntl.fcntl(fd, get) < PIPE_SIZE:
            fcntl.fcntl(fd, set_, PIPE_SIZE)
    except (ImportError, OSError):
        pass  # over the user's pipe quota, say: the pipe works as it is, with more system calls


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
    """Return once both directions have ended, as nc: the network's EOF ends only the way to
    stdout (which then sees its EOF), and stdin goes on to the network until its own EOF (then
    -N's shutdown). Also return when stdout goes away, the -q timer runs out after stdin's EOF, or
    nothing moves for idle_timeout seconds. OSError, never a quiet end, when stdin may not have
    been delivered: the network reset the connection before stdin's EOF or refused bytes, or the
    idle timeout came while bytes from stdin were waiting for it. sock may be a TLS session (an
    HTTPS proxy), which has no half-close: -N's EOF is not passed on through it."""
    tls: ssl.SSLSocket | None = sock if hasattr(sock, "pending") else None  # type: ignore[assignment]
    os.set_blocking(1, True)
    net = sock.fileno()
    enlarge_pipe(1)
    down = pump(net, 1, to_network=False, tls=tls)
    up = None
    if read_stdin:
        enlarge_pipe(0)
        up = pump(0, net, to_network=True, tls=tls)
    sock.setblocking(False)
    try:
        _run(sock, down, up, half_close and tls is None, quit_after, idle_timeout)
    finally:
        sock.setblocking(True)
        down.close()
        if up is not None:
            up.close()


def _run(
    sock: socket.socket,
    down: Pump | None,
    up: Pump | None,
    half_close: bool,
    quit_after: float | None,
    idle_timeout: float | None,
) -> None:
    poller = Poller()
    quit_at: float | None = None
    while down is not None or up is not None:
        waits = [w for w in (idle_timeout, None if quit_at is None else quit_at - time.monotonic()) if w is not None]
        pumps = [p for p in (down, up) if p is not None]
        # Past the network's EOF, the connection is still watched while stdin goes on: a reset (or a
        # close of both ways) after it means that the rest of stdin can never be delivered.
        watch = (sock.fileno(),) if down is None else ()
        ready = poller.wait(pumps, None if not waits else min(waits), watch)
        if not ready and not any(p.ready_now() for p in pumps):
            if up is not None and up.holds():
                raise OSError(errno.ETIMEDOUT, "timed out with bytes from stdin not yet taken by the network")
            return
        if watch and ready.get(watch[0], 0) & (select.POLLHUP | select.POLLERR):
            raise _stdin_lost(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET)
        if down is not None and down.due(ready):
            try:
                ended = not down.step()
            except BrokenPipeError:  # stdout went away
                return
            except ConnectionResetError:  # nothing more goes either way: fine once stdin has ended
                if up is not None:
                    raise _stdin_lost(reset=True) from None
                return
            if ended:  # the network's EOF: stdout's too, while stdin goes on
                down.close()
                down = None
                _close_stdout()
        if up is not None and up.due(ready):
            try:
                ended = not up.step()
            except up.closed_errors:
                raise _stdin_lost(reset=False) from None
            if ended:
                up.close()
                up = None
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
                if quit_after is not None:
                    quit_at = time.monotonic() + quit_after


def _stdin_lost(reset: bool) -> OSError:
    """The error that ends a relay whose stdin can no longer be delivered: never a success."""
    if reset:
        return OSError(errno.ECONNRESET, "the connection was reset before the end of stdin")
    return OSError(errno.EPIPE, "the connection was closed before all of stdin was sent")


def _close_stdout() -> None:
    """Pass the network's EOF on: whoever reads stdout (ssh) learns that the connection has ended
    without waiting for our exit. /dev/null takes descriptor 1's place, so that no descriptor
    opened later becomes stdout."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
    finally:
        os.close(null)


class Poller:
    """poll() for what the pumps wait for, telling the kernel only what changed."""

    def __init__(self) -> None:
        self.poller = select.poll()
        self.registered: dict[int, int] = {}

    def wait(self, pumps: list[Pump], timeout: float | None, watch: tuple[int, ...] = ()) -> dict[int, int]:
        """Events by descriptor; timeout in seconds (None: for ever), 0 when a pump can go on now."""
        wanted = dict.fromkeys(watch, 0)  # hang-ups and errors are reported without asking
        for p in pumps:
            fd, event = p.waiting_for()
            wanted[fd] = wanted.get(fd, 0) | event
        for fd in set(self.registered) | set(wanted):
            if fd not in wanted:
                self.poller.unregister(fd)
            elif fd not in self.registered:
                self.poller.register(fd, wanted[fd])
            elif self.registered[fd] != wanted[fd]:
                self.poller.modify(fd, wanted[fd])
        self.registered = wanted
        if any(p.ready_now() for p in pumps):
            timeout = 0
        return dict(self.poller.poll(None if timeout is None else max(0.0, timeout) * 1000))
