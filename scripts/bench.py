"""Hand-off time of ncfd -F against nc.openbsd -F and the floor, through the same real proxies on
loopback, alternating runs, medians. Run it through scripts/bench (a clean, non-editable install).

The floor of a path is the seed write-up's ten-line dialer (create_connection + sendmsg, same
interpreter) plus importing the library that path needs (nothing direct, PySocks for SOCKS, h11 for
CONNECT): what no Python implementation of the path can undercut.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import peers  # the test suite's launchers for the real servers

DIALER = """\
import array, socket, sys
{imports}
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
fds = array.array("i", [s.fileno()])
socket.socket(fileno=1).sendmsg([b"\\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
"""


def handoff_seconds(argv: list[str]) -> float:
    """Spawn argv as ssh would (socketpair on stdin/stdout), until it has passed a socket and exited."""
    ours, theirs = socket.socketpair()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=theirs.fileno(), stdout=theirs.fileno(), stderr=subprocess.DEVNULL)
    theirs.close()
    _, fds, _, _ = socket.recv_fds(ours, 1, 1)
    proc.wait()
    elapsed = time.perf_counter() - start
    ours.close()
    for fd in fds:
        os.close(fd)
    if proc.returncode != 0 or not fds:
        raise RuntimeError(f"{argv} failed (exit {proc.returncode})")
    return elapsed


@contextlib.contextmanager
def servers() -> Iterator[dict[str, peers.Proxy]]:
    with contextlib.ExitStack() as stack:
        found = {}
        for name, launch in [("microsocks", peers.microsocks), ("dante", peers.dante),
                             ("tinyproxy", peers.tinyproxy), ("squid", peers.squid)]:  # fmt: skip
            if peers.which(name if name != "dante" else "danted"):
                found[name] = stack.enter_context(launch())
        yield found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=40, help="alternating runs per command (default 40)")
    args = parser.parse_args()
    ncfd = shutil.which("ncfd", path=os.path.dirname(sys.executable))
    if ncfd is None:
        sys.exit("bench: ncfd is not installed next to this interpreter; run scripts/bench")
    nc = shutil.which("nc.openbsd")
    py = sys.executable
    floors = {name: DIALER.format(imports=imp) for name, imp in
              [("direct", ""), ("socks", "import socks"), ("http", "import h11")]}  # fmt: skip

    with peers.banner_target() as target, servers() as proxies:
        t = ["127.0.0.1", str(target.port)]
        paths: list[tuple[str, list[str], str]] = [("direct", [], "direct")]
        for name, protocol, kind in [("microsocks", "5", "socks"), ("dante", "5", "socks"), ("dante", "4", "socks"),
                                     ("tinyproxy", "connect", "http"), ("squid", "connect", "http")]:  # fmt: skip
            if name in proxies:
                paths.append((f"{name} -X {protocol}", ["-X", protocol, "-x", proxies[name].address], kind))
        print(f"hand-off time, spawn to exit, median of {args.runs} alternating runs (ms)")
        print(f"{'path':24} {'ncfd':>7} {'nc.openbsd':>11} {'floor':>7} {'ncfd/floor':>11} {'ncfd/nc':>8}")
        for label, proxy_args, kind in paths:
            commands = {"ncfd": [ncfd, "-F", *proxy_args, *t]}
            if nc:
                commands["nc"] = [nc, "-F", *proxy_args, *t]
            # The floor dials the first hop the same way: the proxy, or the target.
            hop = [peers.HOST, proxy_args[-1].rsplit(":", 1)[1]] if proxy_args else t
            commands["floor"] = [py, "-c", floors[kind], *hop]
            times: dict[str, list[float]] = {name: [] for name in commands}
            for argv in commands.values():  # warm caches once
                handoff_seconds(argv)
            for _ in range(args.runs):
                for name, argv in commands.items():
                    times[name].append(handoff_seconds(argv))
            med = {name: statistics.median(v) * 1000 for name, v in times.items()}
            nc_ms = med.get("nc")
            print(
                f"{label:24} {med['ncfd']:7.1f} {nc_ms if nc_ms is not None else float('nan'):11.1f} "
                f"{med['floor']:7.1f} {med['ncfd'] / med['floor']:10.2f}x "
                f"{med['ncfd'] / nc_ms if nc_ms else float('nan'):7.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
