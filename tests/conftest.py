"""What the tests of every level share, and the levels kept true.

tests/unit runs in-process; tests/cli runs ncfd (or ssh, or any program) as a process against the
scripted servers of tests/support/fakeservers.py; tests/peers starts real servers and tools
(tests/support/peers.py; their fixtures are in tests/peers/conftest.py). The tests under
tests/peers are marked `peers`: CI runs the whole suite on one Python and `-m "not peers"` on the
others. A test elsewhere that looks for a peer's binary fails, and so does a test under tests/unit
that starts a process (tests/unit/conftest.py).
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support import ROOT, peers
from tests.support.install import Installed

PEERS = Path(__file__).resolve().parent / "peers"


@pytest.fixture
def banner_target() -> Iterator[peers.Target]:
    with peers.banner_target() as target:
        yield target


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("install")
    run = functools.partial(subprocess.run, check=True, capture_output=True, timeout=600)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(ROOT)])
    [wheel] = (tmp / "dist").glob("ncfd-*.whl")
    run([sys.executable, "-m", "venv", str(tmp / "venv")])
    run([str(tmp / "venv" / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)])
    yield Installed(tmp / "venv", wheel)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(PEERS):
            item.add_marker(pytest.mark.peers)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """A test not marked `peers` that looks for a peer's binary fails: the marker stays true."""
    if item.get_closest_marker("peers") is not None:
        return (yield)

    def refuse(name: str) -> NoReturn:
        pytest.fail(f"needs {name}: a test that starts a real server or tool belongs in tests/peers")

    found, peers.which = peers.which, refuse
    try:
        return (yield)
    finally:
        peers.which = found
