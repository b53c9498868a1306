"""What tests/cli/test_fdrecv.py and tests/peers/test_fdrecv.py share."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

FDRECV = [sys.executable, "-m", "ncfd.fdrecv"]
PREFIX = "ncfd-fdrecv: "
HINT = "is it an fd-passing dialer (nc -F, ncfd -F)?"


def fdrecv(args: list[str], input: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*FDRECV, *args], input=input, capture_output=True, timeout=timeout)


def fdrecv_watching_the_dialer(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """Run with -v and return the result and our last line on stderr, once the dialer, whose pid -v
    names, is checked to be gone. stderr goes to a file: a dialer left running would hold a pipe."""
    err_path = tmp_path / "stderr"
    with err_path.open("wb") as err:
        argv = [*FDRECV, "-v", *args]
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, timeout=20)
    lines = err_path.read_text().splitlines()
    started = re.fullmatch(rf"{PREFIX}started \S+, pid (\d+)", lines[0])
    assert started, lines
    pid = int(started[1])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"the dialer, pid {pid}, was still running after ncfd-fdrecv exited: {lines}")
    assert all(line.startswith(PREFIX) for line in lines), lines
    return r, lines[-1][len(PREFIX) :]


def one_error_line(r: subprocess.CompletedProcess[bytes]) -> str:
    """The whole of stderr, checked to be one line from us and no traceback."""
    err = r.stderr.decode()
    assert err.startswith(PREFIX) and err.endswith("\n") and err.count("\n") == 1, err
    return err[len(PREFIX) : -1]
