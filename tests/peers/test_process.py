"""ncfd as a process: SIGINT, SIGTERM and SIGHUP end it promptly and quietly, and a hand-off leaves
nothing behind. strace shows every descriptor ncfd made closed but the passed socket, no thread or
child, and nothing on ssh's end of stdout but the one SCM_RIGHTS message."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support import peers
from tests.support.fdharness import NCFD, Handoff, run_fdpass
from tests.support.peers import require
from tests.support.strace import parse_trace, trace_problems

# --- what a hand-off leaves behind, from strace --------------------------------------------

# Calls that make, move or close a descriptor, start a task, or write; connect only makes a failure
# message easier to read.
TRACED = (
    "socket,socketpair,connect,openat,fcntl,dup,dup2,dup3,close,"
    "clone,clone3,fork,vfork,execve,write,sendto,sendmsg,exit_group"
)


def traced_handoff(tmp_path: Path, argv: list[str], stray_bytes_ok: bool = False) -> tuple[Handoff, str]:
    require("strace")
    trace = tmp_path / "strace.out"
    r = run_fdpass(["strace", "-f", "-e", f"trace={TRACED}", "-o", str(trace), *argv], stray_bytes_ok=stray_bytes_ok)
    return r, trace.read_text()


# (proxy fixture, -X protocol): direct, each SOCKS version and both HTTP proxies.
PATHS = [
    (None, None),
    ("dante", "5"),
    ("dante", "4"),
    ("microsocks", "5"),
    ("squid", "connect"),
    ("tinyproxy", "connect"),
]


@pytest.mark.parametrize(("fixture", "protocol"), PATHS, ids=[f"{f}-{p}" if f else "direct" for f, p in PATHS])
def test_handoff_leaves_only_the_passed_socket(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    banner_target: peers.Target,
    fixture: str | None,
    protocol: str | None,
) -> None:
    via: list[str] = []
    if fixture is not None:
        proxy: peers.Proxy = request.getfixturevalue(fixture)
        via = ["-X", str(protocol), "-x", proxy.address]
    # -v: its narration must go to stderr, not to ssh ahead of the descriptor.
    r, trace = traced_handoff(tmp_path, [*NCFD, "-F", "-v", *via, "127.0.0.1", str(banner_target.port)])
    r.assert_banner_and_echo(peers.TARGET_BANNER)
    assert trace_problems(parse_trace(trace)) == [], trace


# The same checks against ncfd made to misbehave around its real entry point: they must fail.
SABOTAGE = {
    "socket left open": ("import socket; kept = socket.socket()", "descriptors left open at exit"),
    "thread": ("import threading; threading.Thread(target=int).start()", "started a thread or process"),
    "byte on stdout": ("import os; os.write(1, b'x')", "sent on stdout besides the descriptor"),
}


@pytest.mark.parametrize("sabotage", SABOTAGE)
def test_trace_check_catches_a_misbehaving_ncfd(tmp_path: Path, banner_target: peers.Target, sabotage: str) -> None:
    code, expected = SABOTAGE[sabotage]
    argv = [sys.executable, "-c", f"{code}\nfrom ncfd.cli import main; raise SystemExit(main())"]
    # The harness would see the stray byte itself: the trace check is what is tested here.
    r, trace = traced_handoff(tmp_path, [*argv, "-F", "127.0.0.1", str(banner_target.port)], stray_bytes_ok=True)
    r.close()
    problems = trace_problems(parse_trace(trace))
    assert any(expected in p for p in problems), problems
