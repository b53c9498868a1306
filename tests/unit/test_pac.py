"""--proxy-pac end to end: PAC files served by nginx (conditional GET for real), the routes they
choose tried in order with the real ssh logging in, failover past a dead proxy and its memory, the
cache, and hostile PACs and PAC servers, each one clear line, no descriptor, within -w."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ncfd.deadline import Deadline
from ncfd.errors import TimedOut
from ncfd.proxies import Proxy
from ncfd.request import ConnectSpec, Route
from ncfd.route import cache
from ncfd.tunnel.failover import open_tunnel
from tests.support import peers

# --- a PAC's long list ------------------------------------------------------------------------------


def test_the_dead_proxy_file_keeps_the_latest_few(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache.note_proxies([f"HTTP proxy p{i}:1" for i in range(cache.MAX_DEAD + 100)], [])
    assert list(cache.dead_proxies()) == [f"HTTP proxy p{i}:1" for i in range(100, cache.MAX_DEAD + 100)]
    cache.note_proxies(["HTTP proxy new:1"], ["HTTP proxy p100:1", "HTTP proxy p101:1"])
    dead = list(cache.dead_proxies())
    assert len(dead) == cache.MAX_DEAD - 1 and dead[0] == "HTTP proxy p102:1" and dead[-1] == "HTTP proxy new:1"


def test_the_deadline_passing_between_routes_says_how_far_the_routes_got() -> None:
    def slow_bookkeeping(route: Route, alive: bool) -> None:
        time.sleep(1.5)  # the deadline passes before the next route

    refused = [Route([Proxy("127.0.0.1", peers.free_port(), "connect")]) for _ in range(3)]
    spec = ConnectSpec("h", 22, refused, route_verdict=slow_bookkeeping)
    with pytest.raises(TimedOut) as e:
        open_tunnel(spec, Deadline(1))
    assert str(e.value) == (
        f"timed out after 1s connecting: 1 of 3 routes failed, 2 not tried: {refused[0]}: connect to HTTP proxy "
        f"127.0.0.1 port {refused[0].hops[0].port} failed: Connection refused"
    )
