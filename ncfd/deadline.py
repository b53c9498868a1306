"""One deadline over connecting and the whole proxy handshake, as a value every blocking step reads.

Not a signal: a SIGALRM timer belongs to the main thread and to one caller per process, and its
handler cannot interrupt native code. Each step sizes its wait to what is left instead (a socket
timeout per recv and send, poll's timeout, a join), so a proxy that drips one byte at a time cannot
stretch the whole, and many deadlines can run at once in as many threads.

What cannot be given a timeout (getaddrinfo, a Kerberos library call) runs in a helper thread that
is abandoned when the deadline passes: call_within() below.

Where a blocking step fails is said in one place, its Step: `with deadline.step(words, error):`
around the step turns a socket's TimeoutError, and the deadline's own end raised by remaining()
in anything the step calls, into "timed out after 60s <words>", and an OSError into error(e). The
words are given where the step is; what the step calls (ncfd.net) needs none.

A deadline can also be cancelled from another thread (connect_async's task): every wait on it ends
at once, as if the time were up.
"""

from __future__ import annotations

# _thread, not threading: importing threading would cost a PAC lookup more than the lookup.
import _thread
import time

from ncfd.errors import Cancelled, NcfdError, TimedOut

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable
    from types import TracebackType
    from typing import TypeVar

    T = TypeVar("T")


class Deadline:
    def __init__(self, seconds: float, parent: Deadline | None = None) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.parent = parent  # the whole a share() is part of: it stops while this one does
        self._paused_at: float | None = None
        # One for a deadline and every deadline made from it: cancelling one cancels them all.
        self._cancel: _Cancel = parent._cancel if parent is not None else _Cancel()

    def remaining(self) -> float:
        """Seconds left, never zero or less: TimedOut once the deadline has passed (Cancelled once
        it has been cancelled)."""
        left = self.at - time.monotonic()
        if left <= 0 or self._cancel.cancelled:
            ended = self.expired()
            ended.unnamed = True  # the Step around says what was waited for
            raise ended
        return left

    def expired(self, what: str = "connecting") -> TimedOut | Cancelled:
        """The error for this deadline's end (or its cancel()) while what was under way: "timed out
        after 60s waiting for ...". A Step around the wait names it; "connecting" where none does."""
        if self._cancel.cancelled:
            return Cancelled(f"cancelled while {what}")
        return TimedOut(f"timed out after {format_seconds(self.seconds)}s {what}")

    def step(self, what: str | Callable[[], str], error: Callable[[OSError], BaseException] | None = None) -> Step:
        """The boundary of one blocking step: `with deadline.step("waiting for X", error):` (Step)."""
        return Step(self, what, error)

    def arm(self, sock: socket.socket) -> None:
        """Give sock's next blocking call what is left: its socket.timeout is then the deadline's end,
        for the Step around it to name."""
        self.watch(sock)
        sock.settimeout(self.remaining())

    def watch(self, sock: socket.socket) -> None:
        """Have cancel() shut sock down: a wait on it then ends at once."""
        self._cancel.sockets.add(sock)
        if self._cancel.cancelled:
            _shut(sock)

    @property
    def cancelled(self) -> bool:
        return self._cancel.cancelled

    def cancel(self) -> None:
        """From another thread: end every wait on this deadline now. The sockets it watches are
        shut down (whoever opened them closes them on the way out), call_within() stops waiting, and
        remaining() raises Cancelled from now on. A call already in a helper thread runs to its end,
        unwaited for, as at the deadline."""
        self._cancel.cancelled = True
        for sock in list(self._cancel.sockets):
            _shut(sock)
        for wake in list(self._cancel.waiters):
            _release(wake)

    def pause(self) -> None:
        """Stop the clock while a person types a password."""
        self._paused_at = time.monotonic()
        if self.parent is not None:
            self.parent.pause()

    def resume(self) -> None:
        if self._paused_at is not None:
            self.at += time.monotonic() - self._paused_at
            self._paused_at = None
        if self.parent is not None:
            self.parent.resume()

    def share(self, entries: int) -> Deadline:
        """A deadline for the first of entries routes still to try: an equal part of what is left
        (all of it for the last), ending no later than this one."""
        return Deadline(self.remaining() / max(entries, 1), self)


def format_seconds(seconds: float) -> str:
    """Seconds for a message: 2, 2.5, 60, a share like 1.4993 as 1.5."""
    return f"{round(seconds, 1):g}"


def call_within(deadline: Deadline, call: Callable[[], T], what: str, stack: int = 0) -> T:
    """call() in a helper thread, waited for until the deadline (or its cancel()): for calls that
    take no timeout and that no signal interrupts (getaddrinfo). At the deadline the thread is
    abandoned: it ends when the call returns, its answer unused; a daemon thread does not keep the
    process alive. A call that makes several such steps must read the deadline between them, so
    that no more than the one in flight outlives its caller. stack: the helper's stack size in
    bytes, where the default may be too small (musl gives 128 KiB)."""
    results: list[T] = []
    errors: list[BaseException] = []
    done = _thread.allocate_lock()
    done.acquire()

    def run() -> None:
        try:
            results.append(call())
        except BaseException as e:  # handed to the waiting thread
            # Without this frame's own entry: the traceback would hold it, and it holds errors, a
            # cycle that would keep what call() left behind (a PAC's JavaScript engine) alive until
            # the next garbage collection rather than until the thread ends.
            errors.append(e.with_traceback(e.__traceback__.tb_next if e.__traceback__ else None))
        finally:
            _release(done)

    start_thread(lambda: _thread.start_new_thread(run, ()), what, stack)
    deadline._cancel.waiters.add(done)  # before remaining(): a cancel() from now on releases done
    try:
        done.acquire(timeout=deadline.remaining())
    finally:
        deadline._cancel.waiters.discard(done)
    if results:
        return results[0]
    # call() may have read the deadline and given up itself: the same end, told the same way.
    if errors and not isinstance(errors[0], TimedOut):
        raise errors[0]
    raise deadline.expired(what)


class Step:
    """Where one blocking step's failures become ncfd's errors, said in the step's words, as
    httpcore's map_exceptions: a socket's TimeoutError, and the deadline's own end (or cancel())
    raised by remaining() in anything the step calls, become deadline.expired(what): "timed out
    after 60s waiting for HTTP proxy p:3128 to open the tunnel to h:22", "cancelled while ...". An
    OSError becomes error(e), when the step gives one; anything else passes as it is, a timeout
    an inner step has named included.

    what: the words, or a callable giving them when the step fails (what a SOCKS handshake waits
    for changes as it goes). A class, not contextlib's decorator: start-up time."""

    __slots__ = ("deadline", "error", "what")

    def __init__(
        self, deadline: Deadline, what: str | Callable[[], str], error: Callable[[OSError], BaseException] | None = None
    ) -> None:
        self.deadline, self.what, self.error = deadline, what, error

    def __enter__(self) -> Step:
        return self

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if e is not None:
            failure = self.failure(e)
            if failure is not e:
                raise failure from None

    def failure(self, e: BaseException) -> BaseException:
        """What e, raised in this step, becomes: e itself when the step has nothing to say of it.
        For a step that handles its failures itself (a SOCKS handshake quoting what came)."""
        if isinstance(e, TimeoutError) or (isinstance(e, (TimedOut, Cancelled)) and e.unnamed):
            return self.deadline.expired(self.what if isinstance(self.what, str) else self.what())
        if isinstance(e, OSError) and self.error is not None:
            return self.error(e)
        return e


# Held while ncfd starts a thread: the stack size is process-wide, and read when a thread starts.
_STARTING = _thread.allocate_lock()


def start_thread(start: Callable[[], object], what: str, stack: int = 0) -> None:
    """Call start(), which starts one thread, with a stack of stack bytes (0: the size set, or the
    system's default) for that thread. Every thread ncfd starts is started here, one at a time:
    none of them gets a size set for another, and the size is put back before the next. Python
    has no per-thread size: a thread that the application starts through threading at that very
    moment may get stack bytes too, for as long as one pthread_create() takes."""
    with _STARTING:
        try:
            if not stack:
                start()
                return
            previous = _thread.stack_size(stack)
            try:
                start()
            finally:
                _thread.stack_size(previous)
        except RuntimeError as e:  # no memory or no thread left: "can't start new thread"
            raise NcfdError(f"cannot start a thread for {what}: {e}") from None


class _Cancel:
    """What Deadline.cancel() reaches: a flag read by remaining(), the sockets to shut down and
    the locks call_within() waits on."""

    __slots__ = ("cancelled", "sockets", "waiters")

    def __init__(self) -> None:
        self.cancelled = False
        self.sockets: set[socket.socket] = set()
        self.waiters: set[_thread.LockType] = set()


def _shut(sock: socket.socket) -> None:
    # socket.socket's own: an SSLSocket's would also drop its TLS state under the thread using it.
    import socket

    try:  # noqa: SIM105 (contextlib's import costs more than a lookup: see ncfd.log)
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # closed, detached, or not connected yet: nothing waits on it


def _release(lock: _thread.LockType) -> None:
    """Release lock if it is held: the helper and cancel() may both get there."""
    try:  # noqa: SIM105
        lock.release()
    except RuntimeError:
        pass
