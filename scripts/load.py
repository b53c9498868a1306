"""ncfd -F under load: hundreds of hand-offs in sequence and dozens at once, direct and through squid
(HTTP CONNECT) and dante (SOCKS5) on loopback, each checked end to end (the passed socket reads the
target's banner and echoes a line). Run it through scripts/load (a clean, non-editable install).

Times are per hand-off, from spawning ncfd to having the descriptor and ncfd's exit, as ssh waits.
On this 2-core machine a concurrent batch is bound by starting dozens of interpreters at once, so its
per-hand-off times measure the queue; hand-offs per second is the number to read there.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

# The checkout's root after site-packages: tests.support from here, ncfd still the one installed.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from tests.support import (
    loadrun,  # the runner test_load.py uses
    peers,  # the test suite's launchers for the real servers
)


@contextlib.contextmanager
def paths() -> Iterator[list[tuple[str, list[str]]]]:
    """(label, proxy options) for direct and each installed proxy, the proxies running."""
    with contextlib.ExitStack() as stack:
        found: list[tuple[str, list[str]]] = [("direct", [])]
        for binary, launch, protocol in [("squid", peers.squid, "connect"), ("danted", peers.dante, "5")]:
            if peers.which(binary):
                proxy = stack.enter_context(launch())
                found.append((f"{launch.__name__} -X {protocol}", ["-X", protocol, "-x", proxy.address]))
            else:
                print(f"load: {binary} is not installed; skipping it", file=sys.stderr)
        yield found


def row(label: str, mode: str, batch: loadrun.Batch) -> str:
    ms = " ".join(f"{seconds * 1000:8.1f}" for seconds in (batch.median, batch.percentile(95), batch.percentile(100)))
    return f"{label:16} {mode:11} {len(batch.outcomes):5} {len(batch.failures):5} {ms} {batch.per_second:10.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--sequential", type=int, default=300, help="hand-offs in a row per path (default 300)")
    parser.add_argument("-c", "--concurrent", type=int, default=50, help="hand-offs at once per path (default 50)")
    args = parser.parse_args()
    ncfd = shutil.which("ncfd", path=os.path.dirname(sys.executable))
    if ncfd is None:
        sys.exit("load: ncfd is not installed next to this interpreter; run scripts/load")

    failures: list[str] = []
    with peers.banner_target() as target, paths() as found:
        print(f"{'path':16} {'mode':11} {'count':>5} {'fail':>5} {'median':>8} {'p95':>8} {'max':>8} {'hand-offs':>10}")
        print(f"{'':16} {'':11} {'':5} {'':5} {'ms':>8} {'ms':>8} {'ms':>8} {'per s':>10}")
        for label, via in found:
            argv = [ncfd, "-F", *via, target.host, str(target.port)]
            for mode, run, count in [("sequential", loadrun.sequential, args.sequential),
                                     ("concurrent", loadrun.concurrent, args.concurrent)]:  # fmt: skip
                batch = run(label, argv, count)
                print(row(label, mode, batch), flush=True)
                failures += [f"{label} {mode}: {error}" for error in batch.failures]
    for failure in failures[:20]:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
