"""The nc-compatible command line: parsing, defaults and usage errors (pure, no sockets)."""

from __future__ import annotations

from tests.support.fdharness import run_ncfd


def test_help_goes_to_stdout_and_exits_0() -> None:
    r = run_ncfd(["-h"])
    assert r.returncode == 0
    assert r.stdout.startswith(b"usage: ncfd [-46DdFhNnvz]")
    assert b"Exit status:" in r.stdout
    assert r.stderr == b""


def test_usage_error_is_one_line_exit_2_no_traceback() -> None:
    r = run_ncfd(["-X", "7", "-x", "p", "h", "22"])
    assert r.returncode == 2
    lines = r.stderr.decode().splitlines()
    assert lines == ["ncfd: unsupported proxy protocol '7' (use connect, 4, 4A or 5)"]
    assert "Traceback" not in r.stderr.decode()
    assert r.stdout == b""
