"""The one deadline and its parts, in-process: each route's share of what is left, call_within() giving
up on a call at the deadline, and the part of it a PAC fetch may take. Each outcome is told apart
by a message naming the step, never by which of two limits a busy machine lets fire first: the
limit under test is always the nearer by seconds."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from ncfd.deadline import Deadline, call_within
from ncfd.errors import PacError, TimedOut
from ncfd.proxies import Proxy
from ncfd.request import ConnectSpec, Route
from ncfd.route import pac_fetch
from ncfd.route.pac_engine import PAC_CPU_LIMIT, pac_cpu_limit
from ncfd.tunnel.failover import open_tunnel
from tests.support.fakeservers import FAKE_TARGET_BANNER, FakeServer, http_proxy, silent


def test_a_share_is_an_equal_part_of_what_is_left() -> None:
    whole = Deadline(10)
    first = whole.share(4)
    assert 2.0 < first.seconds <= 2.5 and first.at < whole.at - 7
    assert first.parent is whole
    last = whole.share(1)  # the last route gets all that is left (to the microsecond: the clock read twice)
    assert 9.0 < last.seconds <= 10 and abs(last.at - whole.at) < 0.001
    assert 9.0 < whole.share(0).seconds <= 10


def test_a_share_of_a_passed_deadline_is_a_timeout() -> None:
    whole = Deadline(0.01)
    time.sleep(0.05)
    with pytest.raises(TimedOut, match=r"^timed out after 0s connecting$"):
        whole.share(2)


def test_bounded_gives_the_calls_answer_or_its_exception() -> None:
    assert call_within(Deadline(30), lambda: 42, "answering") == 42

    def fails() -> int:
        raise ValueError("from the helper thread")

    with pytest.raises(ValueError, match="from the helper thread"):
        call_within(Deadline(30), fails, "failing")


def test_bounded_returns_at_its_deadline_while_the_call_is_still_blocked() -> None:
    release = threading.Event()
    outcome: list[BaseException | int] = []

    def wait_for_the_test() -> int:
        release.wait(60)
        return 1

    def caller() -> None:
        try:
            outcome.append(call_within(Deadline(0.5), wait_for_the_test, "waiting for the test's event"))
        except TimedOut as e:
            outcome.append(e)

    waiting = threading.Thread(target=caller, daemon=True)
    waiting.start()
    try:
        waiting.join(15)  # the call is still blocked all along: only the deadline can end the wait
        assert not waiting.is_alive(), "call_within() still waiting 15 s after its 0.5 s deadline"
        assert [str(e) for e in outcome] == ["timed out after 0.5s waiting for the test's event"]
    finally:
        release.set()  # the abandoned helper thread ends
        waiting.join(15)


def test_a_silent_route_gets_only_its_share_and_the_next_route_is_reached() -> None:
    """Half of -w 6 each: the silent proxy's 3 s, then the working one's. Given the whole, the
    silent one would leave nothing: the outcome shows which, not a time measured."""
    said: list[str] = []
    answer = b"HTTP/1.1 200 Connection established\r\n\r\n" + FAKE_TARGET_BANNER
    with FakeServer(silent) as stuck, FakeServer(http_proxy(answer)) as working:
        routes = [Route([Proxy("127.0.0.1", server.port, "connect")], pac=True) for server in (stuck, working)]
        sock = open_tunnel(ConnectSpec("127.0.0.1", 22, routes, log=said.append), Deadline(6))
        with sock:
            sock.settimeout(10)
            assert sock.recv(len(FAKE_TARGET_BANNER), 0) == FAKE_TARGET_BANNER
    narration = "\n".join(said)
    share = re.search(rf"^route 1 of 2: HTTP proxy 127.0.0.1:{stuck.port} \(within ([\d.]+) s\)$", narration, re.M)
    assert share is not None and 2.5 <= float(share.group(1)) <= 3.0, narration
    failed = f"HTTP proxy 127.0.0.1:{stuck.port} failed: timed out after {share.group(1)}s waiting for"
    assert f"\n{failed}" in narration and f"\nroute 2 of 2: HTTP proxy 127.0.0.1:{working.port}" in narration


@pytest.mark.parametrize(("whole", "limit", "expected"), [(4.0, 10.0, "2"), (8.0, 1.0, "1")], ids=["half", "limit"])
def test_a_pac_fetch_takes_half_of_what_is_left_at_most_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole: float, limit: float, expected: str
) -> None:
    """A PAC server that never answers ends the fetch at its own bound, seconds before the
    deadline's end: the message names the bound's seconds, and the deadline has time left."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(pac_fetch, "FETCH_LIMIT", limit)
    deadline = Deadline(whole)
    with FakeServer(silent) as mute:
        url = f"http://127.0.0.1:{mute.port}/proxy.pac"
        with pytest.raises(PacError) as e:
            pac_fetch.load(url, deadline, None, lambda _: None, lambda _: None)
    waiting = f"waiting for the PAC server 127.0.0.1:{mute.port}"
    assert str(e.value) == f"cannot fetch PAC {url}: timed out after {expected}s {waiting}"


@pytest.mark.parametrize("left", [0.1, 3.0, 9.5, 9.99, 10.0, 10.5, 11.0, 60.0])
def test_the_pacs_cpu_limit_is_never_set_near_the_deadline(left: float) -> None:
    """A second at least between them, or the engine's error and the deadline's race to be the
    one given: a nearer deadline gets the CPU limit past it (the PAC's CPU time cannot outrun the
    clock, so the deadline's message is given), a farther one the engine's limit."""
    cpu = pac_cpu_limit(left)
    assert abs(cpu - left) >= 1.0
    assert cpu > left if left < PAC_CPU_LIMIT else cpu <= PAC_CPU_LIMIT
