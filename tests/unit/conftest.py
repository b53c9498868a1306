"""tests/unit runs in-process, in seconds, on any machine: a test here that starts a process fails
(one that runs ncfd or another program belongs in tests/cli, one that starts a real server in
tests/peers)."""

from __future__ import annotations

import os
import subprocess
from typing import NoReturn

import pytest


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        pytest.fail("starts a process: a test that runs a program belongs in tests/cli", pytrace=False)

    monkeypatch.setattr(subprocess, "Popen", refuse)
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system"):
        monkeypatch.setattr(os, name, refuse)
