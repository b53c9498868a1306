"""What tests/unit/test_check.py, tests/cli/test_check.py and tests/peers/test_check.py share."""

from __future__ import annotations

import re
import subprocess

from tests.support.fdharness import NCFD

PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
                   "NCFD_PROXY_PASSWORD", "SSH_ASKPASS", "KRB5_CLIENT_KTNAME")  # fmt: skip
STEP = re.compile(r"^ *(\d+\.\d{3})s  (\S.*)$")
TUNNEL_OK = b"HTTP/1.1 200 Connection established\r\n\r\n"
# What a TLS-inspecting proxy starts its side of the handshake with: a handshake record, TLS 1.2,
# carrying a ServerHello (type 2).
SERVER_HELLO = bytes.fromhex("16 03 03 00 4a 02 00 00 46 03 03") + bytes(range(32)) + b"\x00\xc0\x2f\x00"


def check(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, list[str], str]:
    """ncfd --check, with no terminal (setsid: nothing can be prompted for): (exit status, the
    report's steps without their times, stderr), each step checked to be one timed line."""
    r = subprocess.run(["setsid", *NCFD, "--check", *args], capture_output=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)  # fmt: skip
    out = r.stdout.decode()
    lines = out.splitlines()
    assert out.endswith("\n") and lines, (out, r.stderr)
    matches = [STEP.match(line) for line in lines]
    assert all(matches), out
    times = [float(m.group(1)) for m in matches if m]
    assert times == sorted(times), out
    assert lines[-1].split("s  ", 1)[1].startswith("verdict: "), out
    return r.returncode, [m.group(2) for m in matches if m], r.stderr.decode()
