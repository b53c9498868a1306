"""The relay's ways of moving bytes (splice straight to or from a pipe, splice through a pipe of its
own, read/write) each carry large transfers intact, whatever stdin and stdout are: pipes, sockets,
regular files, a file opened for append, a tty; and with splice taken away, as on a system without it.

Checksums, not timings: how fast is scripts/bench's business.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import socket
import sys
import threading
from pathlib import Path

import pytest

from ncfd.net import relay
from tests.support import peers
from tests.support.relay_modes import DATA, HAS_SPLICE

# --- the pumps, in-process ----------------------------------------------------------------------


def test_the_cheapest_pump_is_chosen(tmp_path: Path) -> None:
    if not HAS_SPLICE:
        peers.unavailable("no os.splice here")
    a, b = socket.socketpair()
    r, w = os.pipe()
    leader, follower = pty.openpty()
    appending = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    plain = os.open(tmp_path / "file", os.O_WRONLY | os.O_CREAT)
    pumps = []
    try:
        for src, dst, to_network, mode in [
            (b.fileno(), w, False, relay.SPLICE),  # network -> pipe
            (b.fileno(), a.fileno(), False, relay.THROUGH_PIPE),  # network -> socket
            (b.fileno(), plain, False, relay.THROUGH_PIPE),  # network -> file
            (b.fileno(), appending, False, relay.COPY),  # splice() refuses O_APPEND
            (b.fileno(), follower, False, relay.COPY),  # a tty
            (r, b.fileno(), True, relay.COPY),  # pipe -> network: copying is faster
        ]:
            pumps.append(relay.pump(src, dst, to_network))
            assert pumps[-1].mode == mode, (src, dst)
    finally:
        for p in pumps:
            p.close()
        for fd in (r, w, leader, follower, appending, plain):
            os.close(fd)
        a.close()
        b.close()


def test_pipes_are_enlarged_and_other_descriptors_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small pipe gets PIPE_SIZE (through either end: stdin's or stdout's), a larger one keeps
    its size; on a regular file, a socket, a tty or a closed descriptor (stdin or stdout as they
    may be) enlarge_pipe() makes no fcntl call at all."""
    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        if sys.platform == "linux":
            pytest.fail("no fcntl.F_GETPIPE_SZ on Linux: ncfd would never enlarge a pipe")
        peers.unavailable("no F_GETPIPE_SZ here: pipes keep their size")
    real_fcntl = fcntl.fcntl
    for end in (0, 1):
        pipe = os.pipe()
        try:
            real_fcntl(pipe[1], fcntl.F_SETPIPE_SZ, 4096)
            relay.enlarge_pipe(pipe[end])
            assert real_fcntl(pipe[0], fcntl.F_GETPIPE_SZ) == relay.PIPE_SIZE
        finally:
            os.close(pipe[0])
            os.close(pipe[1])
    r, w = os.pipe()
    try:
        real_fcntl(w, fcntl.F_SETPIPE_SZ, 4 * relay.PIPE_SIZE)
        relay.enlarge_pipe(w)
        assert real_fcntl(r, fcntl.F_GETPIPE_SZ) == 4 * relay.PIPE_SIZE  # never shrunk
    finally:
        os.close(r)
        os.close(w)

    calls: list[tuple[int, int]] = []

    def recording_fcntl(fd: int, cmd: int, *arg: int) -> int:
        calls.append((fd, cmd))
        return real_fcntl(fd, cmd, *arg)

    monkeypatch.setattr(fcntl, "fcntl", recording_fcntl)
    leader, follower = pty.openpty()
    try:
        with (tmp_path / "file").open("wb") as f, socket.socket() as s:
            for fd in (f.fileno(), s.fileno(), follower, 9999):  # 9999: not open
                relay.enlarge_pipe(fd)
    finally:
        os.close(leader)
        os.close(follower)
    assert calls == []


def test_a_destination_refusing_splice_midway_loses_nothing(tmp_path: Path) -> None:
    """Our pipe already holds the bytes when dst refuses them: they are copied out, then copying
    goes on."""
    if not HAS_SPLICE:
        peers.unavailable("no os.splice here")
    a, b = socket.socketpair()
    path = tmp_path / "log"
    dst = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # splice() into it: EINVAL
    p = relay.Pump(b.fileno(), dst, relay.THROUGH_PIPE)

    def send() -> None:
        a.sendall(DATA[:3_000_000])
        a.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        while p.step():
            pass
        assert p.mode == relay.COPY
    finally:
        sender.join()
        p.close()
        os.close(dst)
        a.close()
        b.close()
    assert path.read_bytes() == DATA[:3_000_000]


@pytest.mark.parametrize("mode", [relay.COPY, relay.THROUGH_PIPE])
def test_a_full_network_stalls_only_its_own_direction(mode: str) -> None:
    """Towards a peer that does not read, step() never blocks: it holds what it took and asks for
    POLLOUT; once the peer reads, everything arrives in order."""
    if mode != relay.COPY and not HAS_SPLICE:
        peers.unavailable("no os.splice here")
    net, peer = socket.socketpair()
    net.setblocking(False)
    # A network that takes a few kilobytes at a time: each write or splice of what the pump holds
    # (tens of kilobytes) is short, whatever the load on the machine.
    net.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    feed, src = socket.socketpair()
    p = relay.Pump(src.fileno(), net.fileno(), mode)
    payload = DATA[:8_000_000]
    got = bytearray()

    def write_feed() -> None:
        feed.sendall(payload)
        feed.shutdown(socket.SHUT_WR)

    feeder = threading.Thread(target=write_feed)
    feeder.start()
    stalls = 0
    try:
        poller = select.poll()
        while True:
            fd, event = p.waiting_for()
            if event == select.POLLOUT:  # the network is full: only now does the peer read
                stalls += 1
                with contextlib.suppress(BlockingIOError):
                    while True:
                        got += peer.recv(1 << 20, socket.MSG_DONTWAIT)
            poller.register(fd, event)
            if not poller.poll(10_000):
                pytest.fail(f"no progress waiting for {event} on {fd}")
            poller.unregister(fd)
            if not p.step():
                break
        net.shutdown(socket.SHUT_WR)
        peer.settimeout(10)
        while chunk := peer.recv(1 << 20):
            got += chunk
    finally:
        p.close()
        for s in (net, peer, feed, src):
            s.close()
        feeder.join()
    assert stalls, "the network never filled up: the test proves nothing"
    assert bytes(got) == payload
