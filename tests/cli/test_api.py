"""The Python face, ncfd.connect(): paramiko and asyncssh from PyPI logging in to the test sshd with
sock= through squid, dante, a PAC, a chain and an HTTPS proxy; many threads at once; deadlines that
hold in any thread against silent and drip-feeding proxies; the exceptions a caller tells apart;
no signal handler touched; no work outliving its caller; connect_async cancelled and bounded on its
own; and the stack size each of ncfd's threads starts with."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.api import LOOKUP, SLOW_PAC, SLOW_RESOLVER, WAIT

# --- work that outlives its caller ------------------------------------------------------------


def test_under_a_memory_limit_the_api_raises_only_its_own_errors(tmp_path: Path) -> None:
    """Under an address-space limit, abandoned helpers used to pile up until no thread could start,
    and the API then raised a bare RuntimeError. Now they end in time; and where a thread cannot
    start, that is an NcfdError too."""
    pac = tmp_path / "slow.pac"
    pac.write_text(SLOW_PAC)
    script = SLOW_RESOLVER + textwrap.dedent(f"""
        import resource, sys, time
        import ncfd

        def vm_size():
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) << 10 for line in status if line.startswith("VmSize:"))

        def call():
            try:
                ncfd.connect("127.0.0.1", 9, pac={str(pac)!r}, timeout=0.5)
            except ncfd.NcfdError as e:
                return type(e).__name__
            except BaseException as e:
                return "escaped " + type(e).__name__ + ": " + str(e)
            return "connected"

        call()  # everything imported and warm
        time.sleep({LOOKUP} + 1)
        # Room for a few helpers' 8 MiB stacks, not for a dozen.
        resource.setrlimit(resource.RLIMIT_AS, (vm_size() + (40 << 20), resource.RLIM_INFINITY))
        print("\\n".join(call() for _ in range(12)))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 0, r.stderr
    outcomes = r.stdout.split("\n")[:-1]
    assert len(outcomes) == 12
    assert not [o for o in outcomes if not o.startswith(("TimedOut", "NcfdError"))], outcomes
