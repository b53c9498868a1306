"""A server that dies mid-run is named: the tests after it fail with one line saying which server
is gone and how it ended, and its log's last lines, not with "Connection refused" on a port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import ROOT, peers

STARTED = "Starting main loop. Accepting connections."  # tinyproxy's last line at start, once written


def wait_logged(log: Path, line: str) -> None:
    """tinyproxy accepts before its log says so: wait (10 s at most) for the log to have line."""
    deadline = time.monotonic() + 10
    while not (log.exists() and line in log.read_text()):
        assert time.monotonic() < deadline, f"{log} lacks {line!r}"
        time.sleep(0.02)


def test_a_killed_server_fails_the_check_naming_itself_how_it_ended_and_its_log() -> None:
    peers.require("tinyproxy")
    with peers.tinyproxy() as proxy:
        proxy.check_alive()  # up: nothing happens
        assert proxy.process is not None
        wait_logged(proxy.workdir / "tinyproxy.log", STARTED)
        os.kill(proxy.process.pid, signal.SIGKILL)
        proxy.process.wait(10)
        log = (proxy.workdir / "tinyproxy.log").read_text().splitlines()
        with pytest.raises(pytest.fail.Exception) as failure:
            proxy.check_alive()
    lines = str(failure.value).splitlines()
    assert lines[0] == f"tinyproxy on {proxy.address} is gone: killed by SIGKILL (pid {proxy.process.pid})"
    assert f"--- last lines of {proxy.workdir / 'tinyproxy.log'}:" in lines
    assert log[-1] in lines  # the last thing it said
    assert not failure.value.pytrace


def test_the_tests_after_a_session_server_died_fail_with_its_name_not_connection_refused(tmp_path: Path) -> None:
    peers.require("tinyproxy")
    (tmp_path / "test_dies.py").write_text(
        "import os, signal, socket\n"
        "import pytest\n"
        "from tests.peers.test_peer_deaths import STARTED, wait_logged\n"
        "pytestmark = pytest.mark.peers  # outside tests/peers\n"
        "def test_kills_it(tinyproxy):\n"
        "    wait_logged(tinyproxy.workdir / 'tinyproxy.log', STARTED)\n"
        "    os.kill(tinyproxy.process.pid, signal.SIGKILL)\n"
        "    tinyproxy.process.wait(10)\n"
        "def test_uses_it(tinyproxy):\n"
        "    socket.create_connection((tinyproxy.host, tinyproxy.port), timeout=5).close()\n"
        "def test_uses_its_tls_front(https_proxy):\n"
        "    socket.create_connection((https_proxy.host, https_proxy.port), timeout=5).close()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "tests.peers.conftest", "-p",
            "no:cacheprovider", "-q", "-rf", "--rootdir", str(tmp_path), str(tmp_path / "test_dies.py")]  # fmt: skip
    r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    summary = [line for line in r.stdout.splitlines() if line.startswith("FAILED ")]
    gone = r"tinyproxy on 127\.0\.0\.1:\d+ is gone: killed by SIGKILL \(pid \d+\)"
    assert len(summary) == 2, r.stdout
    assert re.fullmatch(rf"FAILED test_dies\.py::test_uses_it - Failed: {gone}", summary[0]), r.stdout
    assert re.fullmatch(rf"FAILED test_dies\.py::test_uses_its_tls_front - Failed: {gone}", summary[1]), r.stdout
    assert "Connection refused" not in r.stdout and "Traceback" not in r.stdout
    assert "--- last lines of " in r.stdout and STARTED in r.stdout, r.stdout
