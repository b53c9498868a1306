"""Happy Eyeballs (RFC 8305) in ncfd.net.dial: the order of attempts, the race, and what is left open.

The core is tested in-process on crafted getaddrinfo lists, with a "blackhole" for an address that
never answers (a listener whose backlog is full: the kernel drops further SYNs), then end to end on
ncfd-dualstack.test, a name that .ci/run puts in /etc/hosts for both ::1 and 127.0.0.1.

No timing is asserted: only which address won, what was closed, and what -v said. The bounds are
there so that a regression fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

from tests.support import peers
from tests.support.dial import BOUND, blackhole
from tests.support.eyeballs import DUALSTACK, LISTENING_BANNER, Listening, dualstack_resolves
from tests.support.fdharness import NCFD, run_fdpass
from tests.support.peers import unavailable

# --- end to end, on a name with both addresses -------------------------------------------------


def require_dualstack() -> None:
    """Skip when DUALSTACK does not resolve to both ::1 and 127.0.0.1 (.ci/run adds it to
    /etc/hosts); fail under CI, where a skip would hide a broken setup."""
    if not dualstack_resolves():
        unavailable(f"{DUALSTACK} does not resolve to ::1 and 127.0.0.1 (add both to /etc/hosts, as .ci/run does)")


@contextlib.contextmanager
def dualstack_target() -> Iterator[int]:
    """One port: SYNs to ::1 dropped, 127.0.0.1 answering with LISTENING_BANNER."""
    require_dualstack()
    port = peers.free_port()
    with blackhole("::1", port), Listening(port=port):
        yield port


def test_ncfd_gets_past_an_unanswering_ipv6_address() -> None:
    with dualstack_target() as port:
        r = run_fdpass([*NCFD, "-F", "-v", DUALSTACK, str(port)], timeout=30)
        # Before the listener closes: a connection it has not accepted yet would be reset.
        assert r.returncode == 0, r.stderr
        assert r.sock is not None
        assert r.sock.getpeername() == ("127.0.0.1", port)
        assert r.read_exactly(len(LISTENING_BANNER)) == LISTENING_BANNER
    assert r.extra_fds == []
    r.close()
    assert f"connecting to host {DUALSTACK} (::1) port {port}" in r.stderr
    assert f"connecting to host {DUALSTACK} (127.0.0.1) port {port}" in r.stderr
    assert "abandoned the slower attempt to ::1" in r.stderr
    assert r.elapsed < BOUND


def test_dash_4_never_tries_ipv6() -> None:
    with dualstack_target() as port:
        r = run_fdpass([*NCFD, "-F", "-v", "-4", DUALSTACK, str(port)], timeout=30)
    assert r.returncode == 0, r.stderr
    assert "(::1)" not in r.stderr
    r.close()


def test_dash_6_tries_only_ipv6_and_times_out() -> None:
    with dualstack_target() as port:
        r = run_fdpass([*NCFD, "-F", "-6", "-w", "1", DUALSTACK, str(port)], timeout=30)
    assert r.returncode == 7, r.stderr
    assert r.sock is None
    assert r.stderr.startswith("ncfd: timed out after 1s connecting to")


def test_relay_mode_gets_past_it_too() -> None:
    with (
        dualstack_target() as port,
        subprocess.Popen([*NCFD, "-d", DUALSTACK, str(port)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) as proc,
    ):
        assert proc.stdout is not None
        try:
            assert proc.stdout.read(len(LISTENING_BANNER)) == LISTENING_BANNER
        finally:
            proc.kill()
