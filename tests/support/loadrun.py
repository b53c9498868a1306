"""Many ncfd -F hand-offs, in sequence and all at once, each checked end to end: the passed socket
reads the target's banner and echoes a line. Used by test_load.py (asserting no failure) and by
scripts/load.py (printing times).

Each hand-off is timed as ssh sees it, from spawning the command to having the descriptor and the
command's exit; the check on the socket comes after and is not timed.
"""

from __future__ import annotations

import math
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.support import peers
from tests.support.fdharness import run_fdpass


@dataclass
class Outcome:
    seconds: float
    error: str | None = None


@dataclass
class Batch:
    label: str
    outcomes: list[Outcome]
    wall: float  # seconds from the first spawn to the last hand-off checked

    @property
    def failures(self) -> list[str]:
        return [o.error for o in self.outcomes if o.error is not None]

    @property
    def per_second(self) -> float:
        return len(self.outcomes) / self.wall

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the successful hand-offs' times, in seconds (nan if none)."""
        times = sorted(o.seconds for o in self.outcomes if o.error is None)
        return times[max(0, math.ceil(p / 100 * len(times)) - 1)] if times else math.nan

    @property
    def median(self) -> float:
        times = [o.seconds for o in self.outcomes if o.error is None]
        return statistics.median(times) if times else math.nan


Runner = Callable[[str, list[str], int], Batch]
"""sequential or concurrent: (label, argv, count) to a Batch."""


class HandoffFailed(Exception):
    pass


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _check_target(sock: socket.socket, line: bytes, timeout: float) -> None:
    sock.settimeout(timeout)
    banner = _recv_exactly(sock, len(peers.TARGET_BANNER))
    if banner != peers.TARGET_BANNER:
        raise HandoffFailed(f"expected the banner, read {banner!r}")
    sock.sendall(line)
    echoed = _recv_exactly(sock, len(line))
    if echoed != line:
        raise HandoffFailed(f"sent {line!r}, read back {echoed!r}")


def handoff(argv: list[str], line: bytes, timeout: float = 30) -> Outcome:
    """Run argv as ssh runs a ProxyCommand with ProxyUseFdpass, then talk to the target through the
    socket it passed; any failure becomes Outcome.error, never an exception."""
    try:
        r = run_fdpass(argv, timeout)
    except (AssertionError, OSError) as e:
        return Outcome(0.0, f"{type(e).__name__}: {e}")
    try:
        if r.returncode != 0 or r.payload != b"\0" or r.sock is None or r.extra_fds:
            passed = len(r.extra_fds) + (r.sock is not None)
            raise HandoffFailed(f"exit {r.returncode}, payload {r.payload!r}, {passed} fds: {r.stderr.strip()}")
        _check_target(r.sock, line, timeout)
        return Outcome(r.elapsed)
    except (HandoffFailed, OSError) as e:
        return Outcome(r.elapsed, f"{type(e).__name__}: {e}")
    finally:
        r.close()


def sequential(label: str, argv: list[str], count: int) -> Batch:
    start = time.perf_counter()
    outcomes = [handoff(argv, f"{label} {i}\n".encode()) for i in range(count)]
    return Batch(label, outcomes, time.perf_counter() - start)


def concurrent(label: str, argv: list[str], count: int) -> Batch:
    """count hand-offs at once: one thread each, all released together."""
    outcomes: list[Outcome] = [Outcome(0.0, "never ran")] * count
    ready = threading.Barrier(count + 1)

    def one(i: int) -> None:
        ready.wait()
        outcomes[i] = handoff(argv, f"{label} {i}\n".encode())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return Batch(label, outcomes, time.perf_counter() - start)
