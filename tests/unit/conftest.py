"""tests/unit runs in-process, in seconds, on any machine: a test here that starts a process fails
(one that runs ncfd or another program belongs in tests/cli, one that starts a real server in
tests/peers).

Run alone (`pytest tests/unit`, or a path under it), the level spreads over four worker processes
(pytest-xdist), unless -n says otherwise: a few dozen of its tests wait out the deadlines they test
(a silent proxy's second, a PAC's CPU limit), which one process would wait one after another.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

UNIT = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    if getattr(config.option, "numprocesses", False) is not None or config.option.collectonly:
        return  # -n given, or -p no:xdist, or only listing
    if hasattr(config, "workerinput"):
        return  # a worker itself: it runs what it is given
    paths = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    if paths and all(path == UNIT or UNIT in path.parents for path in paths):
        config.option.numprocesses = WORKERS


WORKERS = 4


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        pytest.fail("starts a process: a test that runs a program belongs in tests/cli", pytrace=False)

    monkeypatch.setattr(subprocess, "Popen", refuse)
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system"):
        monkeypatch.setattr(os, name, refuse)
