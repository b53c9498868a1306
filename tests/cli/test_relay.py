"""Without -F: ncfd relays stdin/stdout like nc, for ssh without ProxyUseFdpass."""

from __future__ import annotations

import queue
import socket
import struct
import subprocess
import threading
import time

from tests.support.fakeservers import (
    FAKE_TARGET_BANNER,
    FakeServer,
    Session,
    half_closes_then_counts,
    http_proxy,
    socks5_proxy,
)
from tests.support.fdharness import NCFD, run_ncfd


def banner_then_echo(s: Session) -> None:
    s.send(FAKE_TARGET_BANNER)
    s.echo()


def test_relay_direct_with_N_ends_when_the_server_closes() -> None:
    with FakeServer(banner_then_echo) as t:
        r = run_ncfd(["-N", "127.0.0.1", str(t.port)], input=b"hello\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == FAKE_TARGET_BANNER + b"hello\n"
    assert r.stderr == b""


def test_relay_through_http_proxy_keeps_banner_and_leaks_no_headers() -> None:
    reply = b"HTTP/1.1 200 Connection established\r\nProxy-agent: fake\r\n\r\n"
    with FakeServer(http_proxy(reply + FAKE_TARGET_BANNER)) as p:
        r = run_ncfd(["-N", "-X", "connect", "-x", f"127.0.0.1:{p.port}", "example.com", "22"], input=b"ping\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == FAKE_TARGET_BANNER + b"ping\n"


def test_relay_through_socks5() -> None:
    with FakeServer(socks5_proxy()) as p:
        r = run_ncfd(["-N", "-x", f"127.0.0.1:{p.port}", "example.com", "22"], input=b"ping\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == FAKE_TARGET_BANNER + b"ping\n"


UPLOAD = 20_000_000  # more than the socket buffers on both sides hold: the rest must wait for the relay


def test_a_half_close_from_the_server_leaves_stdin_flowing_to_its_end() -> None:
    """The server's EOF ends only the way to stdout: as nc, every byte of stdin is still sent."""
    counted: queue.Queue[int] = queue.Queue()
    with FakeServer(half_closes_then_counts(counted)) as t:
        r = run_ncfd(["-N", "127.0.0.1", str(t.port)], input=b"u" * UPLOAD, timeout=60)
        assert (r.returncode, r.stdout, r.stderr) == (0, b"ready\n", b"")
        assert counted.get(timeout=10) == UPLOAD


def test_a_server_that_closes_before_stdin_is_sent_fails_the_relay() -> None:
    def answers_and_closes(s: Session) -> None:
        s.send(b"bye\n")

    with FakeServer(answers_and_closes) as t:
        r = run_ncfd(["-N", "127.0.0.1", str(t.port)], input=b"u" * UPLOAD, timeout=60)
    assert r.returncode == 1
    assert r.stdout == b"bye\n"
    assert r.stderr.decode() in {
        f"ncfd: relay to 127.0.0.1 port {t.port} failed: the connection was {how}\n"
        # Which comes first depends on timing: the kernel's RST answering our next write, or the
        # write after it meeting EPIPE.
        for how in ("closed before all of stdin was sent", "reset before the end of stdin")
    }


def run_with_stdin_open(port: int) -> tuple[int, bytes, bytes]:
    """ncfd relaying to port with stdin open and silent throughout (communicate() would close it):
    its exit status, stdout and stderr, within 30 s."""
    proc = subprocess.Popen(
        [*NCFD, "127.0.0.1", str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        returncode = proc.wait(timeout=30)
        return returncode, proc.stdout.read(), proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()


def test_a_reset_before_the_end_of_stdin_fails_the_relay() -> None:
    """stdin stays open, nothing to send: the server's reset is met reading, what came before it
    goes out, and the rest of stdin could never be delivered."""

    def answers_and_resets(s: Session) -> None:
        s.send(b"bye\n")
        s.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.conn.close()

    with FakeServer(answers_and_resets) as t:
        returncode, out, err = run_with_stdin_open(t.port)
    assert (returncode, out) == (1, b"bye\n")
    # Linux reports the reset reading (ECONNRESET), or, when the reading side took it for the end of
    # the stream first, the watch of the connection finds it closed: either way one line, exit 1.
    assert err.decode() in {
        f"ncfd: relay to 127.0.0.1 port {t.port} failed: the connection was {how}\n"
        for how in ("reset before the end of stdin", "closed before all of stdin was sent")
    }


def test_a_reset_after_the_networks_eof_fails_the_relay_while_stdin_is_open() -> None:
    """The server half-closes, then resets: stdin, still open and silent, can never be delivered,
    and ncfd must not wait for its EOF (found hanging where a reset was read as the end of the
    stream)."""

    def half_closes_then_resets(s: Session) -> None:
        s.send(b"bye\n")
        s.conn.shutdown(socket.SHUT_WR)
        time.sleep(0.5)  # ncfd has seen the EOF by now, and waits on stdin
        s.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.conn.close()

    with FakeServer(half_closes_then_resets) as t:
        returncode, out, err = run_with_stdin_open(t.port)
    assert (returncode, out) == (1, b"bye\n")
    # A reset in CLOSE_WAIT (after the server's FIN) is EPIPE to Linux, not ECONNRESET.
    closed = "the connection was closed before all of stdin was sent"
    assert err.decode() == f"ncfd: relay to 127.0.0.1 port {t.port} failed: {closed}\n"


def test_the_network_eof_reaches_stdout_at_once_and_stdin_ends_the_relay() -> None:
    """ssh, reading our stdout, learns at once that the server has gone, and then closes our stdin."""

    def banner_and_close(s: Session) -> None:
        s.send(FAKE_TARGET_BANNER)

    with FakeServer(banner_and_close) as t:
        proc = subprocess.Popen([*NCFD, "127.0.0.1", str(t.port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        out: list[bytes] = []
        reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
        try:
            reader.start()
            reader.join(10)
            assert out == [FAKE_TARGET_BANNER], "stdout saw no EOF while stdin stayed open"
            assert proc.poll() is None  # stdin is still open: the relay waits for it
            proc.stdin.close()
            assert proc.wait(timeout=10) == 0
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()


def test_q_quits_after_stdin_eof_though_the_server_stays() -> None:
    def echo_then_linger(s: Session) -> None:
        s.echo()
        time.sleep(20)

    with FakeServer(echo_then_linger) as t:
        start = time.monotonic()
        r = run_ncfd(["-q", "1", "127.0.0.1", str(t.port)], input=b"x")
        assert r.returncode == 0
        assert 0.9 < time.monotonic() - start < 10
        assert r.stdout == b"x"


def test_d_does_not_read_stdin() -> None:
    with FakeServer(banner_then_echo) as t:
        r = run_ncfd(["-d", "-w", "1", "127.0.0.1", str(t.port)], input=b"never sent")
    assert r.stdout == FAKE_TARGET_BANNER
    assert t.sessions[0].received == b""


def test_z_connects_and_exits() -> None:
    with FakeServer(banner_then_echo) as t:
        r = run_ncfd(["-z", "-v", "127.0.0.1", str(t.port)])
    assert r.returncode == 0
    assert f"Connection to 127.0.0.1 {t.port} port [tcp/".encode() in r.stderr
    assert r.stdout == b""
