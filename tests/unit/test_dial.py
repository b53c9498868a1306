"""Happy Eyeballs (RFC 8305) in ncfd.net.dial: the order of attempts, the race, and what is left open.

The core is tested in-process on crafted getaddrinfo lists, with a "blackhole" for an address that
never answers (a listener whose backlog is full: the kernel drops further SYNs), then end to end on
ncfd-dualstack.test, a name that .ci/run puts in /etc/hosts for both ::1 and 127.0.0.1.

No timing is asserted: only which address won, what was closed, and what -v said. The bounds are
there so that a regression fails instead of hanging.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time

import pytest

from ncfd.deadline import Deadline
from ncfd.errors import ConnectFailed, TimedOut
from ncfd.net import dial
from ncfd.request import SocketOptions
from tests.support import peers
from tests.support.dial import BOUND, blackhole
from tests.support.eyeballs import LISTENING_BANNER, Listening
from tests.support.peers import unavailable

HAS_IPV6 = len(peers.LOOPBACKS) > 1


def info(host: str, port: int) -> tuple:  # type: ignore[type-arg]
    """One getaddrinfo entry, as dial.resolve returns them."""
    if ":" in host:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))


class Recorder:
    """Wraps dial._prepare to keep every socket an attempt made, and collects -v lines."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sockets: list[socket.socket] = []
        self.lines: list[str] = []
        prepare = dial._prepare

        def recording(family: int, opts: SocketOptions) -> socket.socket:
            sock = prepare(family, opts)
            self.sockets.append(sock)
            return sock

        monkeypatch.setattr(dial, "_prepare", recording)

    def log(self, line: str) -> None:
        self.lines.append(line)

    def open_sockets(self) -> list[socket.socket]:
        return [s for s in self.sockets if s.fileno() != -1]


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    return Recorder(monkeypatch)


def race(rec: Recorder, addresses: list[tuple], opts: SocketOptions | None = None) -> socket.socket:  # type: ignore[type-arg]
    return dial.race(addresses, "example.test", 22, opts or SocketOptions(), Deadline(BOUND), rec.log, "host")


# --- the order of attempts --------------------------------------------------------------------


def test_interleave_alternates_families_starting_with_the_first() -> None:
    a6, b6, c6 = info("2001:db8::1", 22), info("2001:db8::2", 22), info("2001:db8::3", 22)
    a4, b4 = info("192.0.2.1", 22), info("192.0.2.2", 22)
    assert dial.interleave([a6, b6, c6, a4, b4]) == [a6, a4, b6, b4, c6]
    assert dial.interleave([a4, b4, a6]) == [a4, a6, b4]
    assert dial.interleave([a4, b4]) == [a4, b4]
    assert dial.interleave([a6, a6, a4, a4]) == [a6, a4]
    assert dial.interleave([]) == []


# --- the race ---------------------------------------------------------------------------------


def test_an_unanswering_first_address_loses_to_the_next(rec: Recorder) -> None:
    with blackhole() as bh, Listening() as live:
        sock = race(rec, [info("127.0.0.1", bh.port), info("127.0.0.1", live.port)])
        with sock:
            assert sock.getpeername() == ("127.0.0.1", live.port)
            assert os.get_blocking(sock.fileno())
            assert sock.recv(len(LISTENING_BANNER)) == LISTENING_BANNER
            assert rec.open_sockets() == [sock]
    assert len(rec.sockets) == 2
    assert any("no answer yet from 127.0.0.1 after 250 ms; trying the next address" in line for line in rec.lines)
    assert "abandoned the slower attempt to 127.0.0.1" in rec.lines
    assert rec.lines[-1] == "connected to host 127.0.0.1:22"  # the port asked for; the test list says otherwise


def test_an_unanswering_ipv6_address_loses_to_ipv4(rec: Recorder) -> None:
    if not HAS_IPV6:
        unavailable("no IPv6 loopback")
    with blackhole("::1") as bh, Listening() as live:
        sock = race(rec, [info("::1", bh.port), info("127.0.0.1", live.port)])
        with sock:
            assert sock.family == socket.AF_INET
            assert sock.getpeername() == ("127.0.0.1", live.port)
            assert rec.open_sockets() == [sock]


def test_a_refusal_starts_the_next_attempt_without_waiting(rec: Recorder) -> None:
    refused = peers.free_port()
    with Listening() as live, race(rec, [info("127.0.0.1", refused), info("127.0.0.1", live.port)]) as sock:
        assert sock.getpeername() == ("127.0.0.1", live.port)
    assert rec.lines[:3] == [
        "connecting to host example.test (127.0.0.1) port 22",
        "connect to host example.test (127.0.0.1) port 22 failed: Connection refused",
        "connecting to host example.test (127.0.0.1) port 22",
    ]
    assert not any("no answer yet" in line for line in rec.lines)
    assert rec.open_sockets() == []


def test_the_first_address_wins_when_it_answers(rec: Recorder) -> None:
    with Listening() as first, Listening() as second:
        sock = race(rec, [info("127.0.0.1", first.port), info("127.0.0.1", second.port)])
        assert sock.getpeername() == ("127.0.0.1", first.port)
        sock.close()
    assert len(rec.sockets) == 1


def test_an_earlier_attempt_answering_late_still_wins(rec: Recorder) -> None:
    """Both attempts pending, the first one connects: it is kept, not only the newest is watched."""
    with blackhole() as first, blackhole() as second:

        def log(line: str) -> None:
            rec.log(line)
            if line.startswith("no answer yet"):  # the second attempt is starting: let the first in
                first.release()

        addresses = [info("127.0.0.1", first.port), info("127.0.0.1", second.port)]
        sock = dial.race(addresses, "example.test", 22, SocketOptions(), Deadline(BOUND), log, "host")
        with sock:
            assert sock.getpeername() == ("127.0.0.1", first.port)
            assert rec.open_sockets() == [sock]
    assert len(rec.sockets) == 2
    assert "abandoned the slower attempt to 127.0.0.1" in rec.lines


def test_every_address_failing_names_each_in_order(rec: Recorder) -> None:
    a, b = peers.free_port(), peers.free_port()
    with pytest.raises(ConnectFailed) as e:
        race(rec, [info("127.0.0.1", a), info("127.0.0.1", b)])
    assert str(e.value) == (
        "connect to host example.test port 22 failed: 127.0.0.1: Connection refused; 127.0.0.1: Connection refused"
    )
    assert rec.open_sockets() == []


def test_one_address_failing_gives_its_reason_alone(rec: Recorder) -> None:
    with pytest.raises(ConnectFailed) as e:
        race(rec, [info("127.0.0.1", peers.free_port())])
    assert str(e.value) == "connect to host example.test port 22 failed: Connection refused"


def test_the_deadline_interrupts_the_race_and_closes_every_attempt(rec: Recorder) -> None:
    with blackhole() as a, blackhole() as b, pytest.raises(TimedOut):
        addresses = [info("127.0.0.1", a.port), info("127.0.0.1", b.port)]
        dial.race(addresses, "example.test", 22, SocketOptions(), Deadline(0.8), rec.log, "host")
    assert len(rec.sockets) == 2
    assert rec.open_sockets() == []


def test_socket_options_and_source_port_apply_to_each_attempt(rec: Recorder) -> None:
    opts = SocketOptions()
    opts.tos = 0x10
    opts.source_port = peers.free_port()
    with blackhole() as bh, Listening() as live:
        sock = race(rec, [info("127.0.0.1", bh.port), info("127.0.0.1", live.port)], opts)
        assert sock.getsockname()[1] == opts.source_port
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0x10
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        sock.close()
    assert len(rec.sockets) == 2


# --- a connection reset before the connect was seen to complete -------------------------------


def test_a_connection_reset_before_the_poll_is_a_connection_with_the_data_still_there(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts, sends and resets at once can do all that before ncfd polls (a busy
    machine): the connect succeeded, and the bytes sent belong to the relay."""
    data = b"sent before the reset\n"
    reset = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            conn.sendall(data)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            reset.set()

        threading.Thread(target=serve, daemon=True).start()

        real_poll = select.poll

        class LatePoll:
            """select.poll whose poll() waits until the reset has reached the socket."""

            def __init__(self) -> None:
                self.poller = real_poll()

            def __getattr__(self, name: str) -> object:
                return getattr(self.poller, name)

            def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
                assert reset.wait(BOUND)
                deadline = time.monotonic() + BOUND
                while time.monotonic() < deadline:
                    events = self.poller.poll(100)
                    if any(event & (select.POLLERR | select.POLLHUP) for _, event in events):
                        return events
                raise AssertionError("the reset never reached the socket")

        monkeypatch.setattr(select, "poll", LatePoll)
        sock = race(rec, [info("127.0.0.1", listener.getsockname()[1])])
    with sock:
        sock.settimeout(BOUND)
        assert sock.recv(100) == data
