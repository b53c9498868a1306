"""What tests/unit/test_dial.py and tests/cli/test_dial.py share."""

from __future__ import annotations

from tests.support.eyeballs import Blackhole, NoBlackhole
from tests.support.peers import unavailable

BOUND = 5.0  # seconds; the race takes about ATTEMPT_DELAY, nc waits for its -w


def blackhole(host: str = "127.0.0.1", port: int = 0) -> Blackhole:
    try:
        return Blackhole(host, port)
    except NoBlackhole as e:
        unavailable(str(e))
