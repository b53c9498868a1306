"""The one boundary where a blocking step's failures become ncfd's errors (ncfd.deadline.Step), in
process: a socket's timeout and the deadline's own end in the words of the step around them, a
timeout an inner step has named left as it is, an OSError made the step's error."""

from __future__ import annotations

import errno
import socket
import threading
import time

import pytest

from ncfd.deadline import Deadline, call_within
from ncfd.errors import Cancelled, ConnectFailed, ProxyError, TimedOut
from ncfd.net.tls import start_tls
from tests.support.fakeservers import FakeServer, silent


def passed() -> Deadline:
    deadline = Deadline(0.01)
    time.sleep(0.05)
    return deadline


def test_a_socket_timeout_in_a_step_is_a_timeout_in_its_words() -> None:
    with pytest.raises(TimedOut) as e, Deadline(2).step("waiting for HTTP proxy p:3128 to open the tunnel to h:22"):
        raise TimeoutError("timed out")
    assert str(e.value) == "timed out after 2s waiting for HTTP proxy p:3128 to open the tunnel to h:22"
    assert e.value.exit_code == 7 and e.value.__suppress_context__


def test_the_deadlines_own_end_in_a_step_says_what_the_step_waited_for() -> None:
    """What remaining() raises deep in what the step calls (a dial's poll) is named by the step, not
    by whatever the deadline was doing before."""
    deadline = passed()
    with pytest.raises(TimedOut) as e, deadline.step("connecting to the PAC server pac.corp"):
        deadline.remaining()
    assert str(e.value) == "timed out after 0s connecting to the PAC server pac.corp"
    with pytest.raises(TimedOut, match=r"^timed out after 0s connecting$"):
        deadline.remaining()  # outside any step: the words of old


def test_a_timeout_an_inner_step_named_passes_the_outer_step_as_it_is() -> None:
    deadline = passed()
    outer = deadline.step("connecting to HTTP proxy p:3128")
    with pytest.raises(TimedOut) as e, outer, deadline.step("waiting for the TLS handshake with HTTPS proxy p:3128"):
        raise TimeoutError
    assert str(e.value) == "timed out after 0s waiting for the TLS handshake with HTTPS proxy p:3128"
    lookup = threading.Event()
    deadline = Deadline(0.3)
    try:
        with pytest.raises(TimedOut) as e, deadline.step("connecting to HTTP proxy p:3128"):
            call_within(deadline, lambda: lookup.wait(30), "resolving HTTP proxy p")
    finally:
        lookup.set()  # the abandoned helper thread ends
    assert str(e.value) == "timed out after 0.3s resolving HTTP proxy p"


def test_an_os_error_becomes_the_steps_error_and_nothing_else_does() -> None:
    def failed(e: OSError) -> ProxyError:
        return ProxyError(f"HTTP proxy p:3128 handshake failed: {e.strerror}")

    deadline = Deadline(30)
    with pytest.raises(ProxyError) as e, deadline.step("waiting for HTTP proxy p:3128", failed):
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    assert str(e.value) == "HTTP proxy p:3128 handshake failed: Connection reset by peer"
    with pytest.raises(ConnectionResetError), deadline.step("waiting for HTTP proxy p:3128"):
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")  # no error given: as it is
    with pytest.raises(ConnectFailed, match=r"^refused$"), deadline.step("waiting", failed):
        raise ConnectFailed("refused")
    with pytest.raises(TimedOut, match=r"^timed out after 30s waiting$"), deadline.step("waiting", failed):
        raise TimeoutError  # an OSError, but a timeout first
    with deadline.step("waiting", failed) as step:
        pass
    assert step.failure(KeyError("x")).args == ("x",)


def test_a_cancelled_deadline_says_cancelled_while_the_step() -> None:
    deadline = Deadline(30)
    part = deadline.share(2)
    deadline.cancel()
    with pytest.raises(Cancelled) as e, part.step("waiting for the PAC server pac.corp"):
        part.remaining()
    assert str(e.value) == "cancelled while waiting for the PAC server pac.corp"
    with pytest.raises(Cancelled, match=r"^cancelled while waiting for the KDC$"), part.step("waiting for the KDC"):
        raise TimeoutError


def test_the_words_may_be_worked_out_when_the_step_fails() -> None:
    received = [b""]

    def awaited() -> str:
        return "waiting for the greeting's answer" if not received[0] else "waiting for the tunnel"

    step = Deadline(3).step(awaited)
    assert str(step.failure(TimeoutError())) == "timed out after 3s waiting for the greeting's answer"
    received[0] = b"\x05\x00"
    assert str(step.failure(TimeoutError())) == "timed out after 3s waiting for the tunnel"


def test_a_tls_handshake_that_outlasts_the_deadline_is_named_by_the_callers_step() -> None:
    """start_tls names no timeout itself: its caller knows what the handshake was for."""
    with FakeServer(silent) as mute:
        sock = socket.create_connection(("127.0.0.1", mute.port), timeout=10)
        deadline = Deadline(0.5)
        with pytest.raises(TimedOut) as e, deadline.step(f"waiting for the PAC server 127.0.0.1:{mute.port}"):
            start_tls(sock, "127.0.0.1", f"PAC server 127.0.0.1:{mute.port}", None, deadline, lambda _: None)
    assert str(e.value) == f"timed out after 0.5s waiting for the PAC server 127.0.0.1:{mute.port}"
    assert sock.fileno() == -1  # closed on the way out
