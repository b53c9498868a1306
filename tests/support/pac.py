"""What tests/cli/test_pac.py and tests/peers/test_pac.py share."""

from __future__ import annotations

from pathlib import Path

import pytest

from ncfd.route import cache
from tests.support import peers
from tests.support.fakeservers import FakeServer
from tests.support.fdharness import NCFD, Handoff, run_fdpass

PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")


def returns(answer: str) -> str:
    return f'function FindProxyForURL(url, host) {{ return "{answer}"; }}'


def handoff(pac: str, target: peers.Target | FakeServer, env: dict[str, str], *args: str) -> Handoff:
    return run_fdpass([*NCFD, "-F", *args, "--proxy-pac", pac, "127.0.0.1", str(target.port)], env=env)


def remembered_dead(env: dict[str, str]) -> list[str]:
    """The proxies the dead-proxy file in env's cache names, oldest first."""
    memory = Path(env["XDG_CACHE_HOME"]) / "ncfd" / "dead-proxies"
    return [line.partition(" ")[2] for line in memory.read_text().splitlines()] if memory.exists() else []


def assert_fails(r: Handoff, code: int, message: str) -> None:
    assert r.sock is None, "a descriptor was passed"
    assert r.returncode == code, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("ncfd: "), r.stderr
    assert message in r.stderr, r.stderr


def plant(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, url: str, answer: str, fetched: float,
          fresh_until: float) -> Path:  # fmt: skip
    """A PAC copy in env's cache as ncfd writes one, saying answer: the file."""

    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    cache.store_pac(cache.PacCopy(url, returns(answer), fetched, fresh_until))
    [copy] = (Path(env["XDG_CACHE_HOME"]) / "ncfd").glob("pac-*")
    return copy
