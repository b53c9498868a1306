"""Hundreds of hand-offs in a row and dozens at once, direct and through squid and dante, each
checked end to end. Only failures are asserted, never times: scripts/load runs more and reports them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import loadrun, peers
from tests.support.fdharness import NCFD

SEQUENTIAL = 100
CONCURRENT = 30


@pytest.fixture(scope="module")
def target() -> Iterator[peers.Target]:
    with peers.banner_target() as t:
        yield t


@pytest.mark.parametrize(
    ("run", "count"),
    [(loadrun.sequential, SEQUENTIAL), (loadrun.concurrent, CONCURRENT)],
    ids=["sequential", "concurrent"],
)
@pytest.mark.parametrize(
    ("fixture", "protocol"),
    [(None, None)],
    ids=["direct"],  # through squid and dante: tests/peers/test_load.py
)
def test_no_handoff_fails(
    request: pytest.FixtureRequest,
    target: peers.Target,
    fixture: str | None,
    protocol: str | None,
    run: loadrun.Runner,
    count: int,
) -> None:
    via: list[str] = []
    if fixture is not None:
        proxy: peers.Proxy = request.getfixturevalue(fixture)
        via = ["-X", str(protocol), "-x", proxy.address]
    batch = run(fixture or "direct", [*NCFD, "-F", *via, "127.0.0.1", str(target.port)], count)
    assert batch.failures == [], f"{len(batch.failures)} of {count} failed, first: {batch.failures[:5]}"
