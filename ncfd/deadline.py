"""One deadline over connecting and the whole proxy handshake.

A SIGALRM timer rather than socket timeouts: a socket timeout bounds each read, so a proxy that drips
one byte just inside it could stall for ever, and PySocks' reads cannot be given a shrinking timeout.
The alarm interrupts whatever blocks (connect, recv, PySocks internals) and raises TimedOut.
"""

from __future__ import annotations

import signal
from types import FrameType

from ncfd.errors import TimedOut


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.phase = "connecting"
        self._left = seconds
        signal.signal(signal.SIGALRM, self._expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)

    def pause(self) -> None:
        """Stop the clock while a person types a password."""
        left, _ = signal.setitimer(signal.ITIMER_REAL, 0)
        self._left = left

    def resume(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, max(self._left, 0.001))

    def cancel(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    def _expire(self, signum: int, frame: FrameType | None) -> None:
        raise TimedOut(f"timed out after {self.seconds:g}s {self.phase}")
