"""One deadline over connecting and the whole proxy handshake, as a value every blocking step reads.

Not a signal: a SIGALRM timer belongs to the main thread and to one caller per process, and its
handler cannot interrupt native code. Each step sizes its wait to what is left instead (a socket
timeout per recv and send, poll's timeout, a join), so a proxy that drips one byte at a time cannot
stretch the whole, and many deadlines can run at once in as many threads.

What cannot be given a timeout (getaddrinfo, a Kerberos library call) runs in a helper thread that
is abandoned when the deadline passes: bounded() below.
"""

from __future__ import annotations

import time

from ncfd.errors import TimedOut

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")


class Deadline:
    def __init__(self, seconds: float, parent: Deadline | None = None) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        # What we are waiting for, for the message: "waiting for HTTP proxy p:3128 to open ...".
        self.phase = "connecting"
        self.parent = parent  # the whole a share() is part of: it stops while this one does
        self._paused_at: float | None = None

    def remaining(self) -> float:
        """Seconds left, never zero or less: TimedOut once the deadline has passed."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise self.expired()
        return left

    def expired(self) -> TimedOut:
        return TimedOut(f"timed out after {shown(self.seconds)}s {self.phase}")

    def arm(self, sock: socket.socket) -> None:
        """Give sock's next blocking call what is left; socket.timeout then means expired()."""
        sock.settimeout(self.remaining())

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
        part = Deadline(self.remaining() / max(entries, 1), self)
        part.phase = self.phase
        return part


def shown(seconds: float) -> str:
    """Seconds for a message: 2, 2.5, 60, a share like 1.4993 as 1.5."""
    return f"{round(seconds, 1):g}"


def bounded(deadline: Deadline, call: Callable[[], T], what: str, stack: int = 0) -> T:
    """call() in a helper thread, waited for until the deadline: for calls that take no timeout and
    that no signal interrupts (getaddrinfo). At the deadline the thread is abandoned: it ends when
    the call returns, its answer unused; a daemon thread does not keep the process alive. stack:
    the helper's stack size in bytes, where the default may be too small (musl gives 128 KiB)."""
    # _thread, not threading: importing threading would cost a PAC lookup more than the lookup.
    import _thread

    results: list[T] = []
    errors: list[BaseException] = []
    done = _thread.allocate_lock()
    done.acquire()

    def run() -> None:
        try:
            results.append(call())
        except BaseException as e:  # handed to the waiting thread
            errors.append(e)
        finally:
            done.release()

    if stack:
        # Process-wide, and only read when a thread starts: set for this one, then put back.
        previous = _thread.stack_size(stack)
        try:
            _thread.start_new_thread(run, ())
        finally:
            _thread.stack_size(previous)
    else:
        _thread.start_new_thread(run, ())
    done.acquire(timeout=deadline.remaining())
    if errors:
        raise errors[0]
    if not results:
        deadline.phase = what
        raise deadline.expired()
    return results[0]
