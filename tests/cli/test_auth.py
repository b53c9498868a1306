"""Proxy authentication: each scheme against the real proxy that demands it, the password sources,
wrong passwords, and secrets kept out of every message."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ncfd.tunnel.proxy_auth import parse_challenges
from tests.support.auth import LONG_PASSWORD, PASSWORD, USER, socks5_with_password, with_password
from tests.support.fakeservers import FAKE_TARGET_BANNER, FakeServer, Session
from tests.support.fdharness import NCFD, Handoff, run_fdpass

# --- scripted servers for what no package provides -----------------------------------------


def test_rfc1929_lengths_on_the_wire() -> None:
    with FakeServer(socks5_with_password) as p:
        run_fdpass([*NCFD, "-F", "-P", USER, "-x", f"127.0.0.1:{p.port}", "h", "22"], env=with_password(LONG_PASSWORD))
        # The greeting offers no-auth and user/password; then VER ULEN UNAME PLEN PASSWD, one byte per length.
        expected = b"\x05\x02\x00\x02" + b"\x01\x05alice\xc8" + LONG_PASSWORD.encode()
        assert p.sessions[0].received.startswith(expected)


def test_socks4_sends_the_user_as_userid() -> None:
    def handler(s: Session) -> None:
        s.recv_exactly(8)
        s.recv_until(b"\x00")
        s.send(b"\x00\x5a" + bytes(6) + FAKE_TARGET_BANNER)

    with FakeServer(handler) as p:
        r = run_fdpass([*NCFD, "-F", "-P", USER, "-X", "4", "-x", f"127.0.0.1:{p.port}", "127.0.0.1", "22"])
        assert r.returncode == 0 and r.read_exactly(len(FAKE_TARGET_BANNER)) == FAKE_TARGET_BANNER
        r.close()
        assert p.sessions[0].received == b"\x04\x01\x00\x16\x7f\x00\x00\x01alice\x00"


def negotiate_proxy(s: Session) -> None:
    """A Negotiate (SPNEGO over NTLM) proxy on one kept-alive connection, as IIS/ISA-style proxies do."""
    import spnego

    context = spnego.server(hostname="proxy", service="HTTP", protocol="negotiate")
    while True:
        request = s.recv_until(b"\r\n\r\n").decode()
        auth = [line.split(" ", 2)[2] for line in request.split("\r\n") if line.startswith("Proxy-Authorization:")]
        out = context.step(base64.b64decode(auth[0])) if auth else None
        if context.complete:
            s.send(b"HTTP/1.1 200 Connection established\r\n\r\n" + FAKE_TARGET_BANNER)
            return s.echo()
        token = f" {base64.b64encode(out).decode()}" if out else ""
        s.send(f"HTTP/1.1 407 Auth\r\nProxy-Authenticate: Negotiate{token}\r\nContent-Length: 4\r\n\r\nnope".encode())


def test_negotiate_on_one_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    users = tmp_path / "ntlm_users"
    users.write_text(f"CORP:{USER}:s3cret pass\n")  # the file format splits on colons
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    with FakeServer(negotiate_proxy) as p:
        argv = [*NCFD, "-F", "-P", f"CORP\\{USER}", "-X", "connect", "-x", f"127.0.0.1:{p.port}", "h", "22"]
        r = run_fdpass(argv, env=with_password("s3cret pass"))
        assert r.returncode == 0, r.stderr
        assert r.read_exactly(len(FAKE_TARGET_BANNER)) == FAKE_TARGET_BANNER
        r.close()
        assert len(p.sessions) == 1


def test_a_407_with_an_empty_body_on_a_kept_alive_connection(basic_proxy_empty_407: FakeServer) -> None:
    """The next request goes out at once: an empty body is complete with the headers."""
    argv = [*NCFD, "-F", "-P", USER, "-w", "20", "-X", "connect", "-x", f"127.0.0.1:{basic_proxy_empty_407.port}",
            "h", "22"]  # fmt: skip
    r = run_fdpass(argv, env=with_password(PASSWORD))
    assert r.returncode == 0, r.stderr
    assert r.elapsed < 10  # not the 20 s deadline
    r.close()
    assert len(basic_proxy_empty_407.sessions) == 1


@pytest.fixture
def basic_proxy_empty_407() -> Iterator[FakeServer]:
    good = b"Proxy-Authorization: Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode())

    def handler(s: Session) -> None:
        while good not in s.recv_until(b"\r\n\r\n"):
            s.send(b'HTTP/1.1 407 Auth\r\nProxy-Authenticate: Basic realm="x"\r\nContent-Length: 0\r\n\r\n')
        s.send(b"HTTP/1.1 200 OK\r\n\r\n" + FAKE_TARGET_BANNER)
        s.echo()

    with FakeServer(handler) as server:
        yield server


def test_a_rejected_basic_password_is_sent_once_then_given_up() -> None:
    """A proxy that keeps the connection and answers every request with 407: the bare CONNECT, one
    with the credentials, then the verdict; never the same password again."""

    def always_407(s: Session) -> None:
        while True:
            s.recv_until(b"\r\n\r\n")
            s.send(b'HTTP/1.1 407 Auth\r\nProxy-Authenticate: Basic realm="x"\r\nContent-Length: 0\r\n\r\n')

    with FakeServer(always_407) as p:
        r = run_fdpass([*NCFD, "-F", "-P", USER, "-X", "connect", "-x", f"127.0.0.1:{p.port}", "h", "22"],
                       env=with_password(PASSWORD))  # fmt: skip
        assert r.sock is None and r.returncode == 6, r.stderr
        assert r.stderr == f"ncfd: proxy authentication failed for {USER} at HTTP proxy 127.0.0.1:{p.port}\n"
        [session] = p.settled()
        requests = session.received.split(b"\r\n\r\n")
        assert requests[-1] == b""
        assert [b"Proxy-Authorization:" in request for request in requests[:-1]] == [False, True]


def test_proxy_closing_after_407_gets_a_fresh_connection_and_no_second_prompt(tmp_path: Path) -> None:
    def closing_basic(s: Session) -> None:
        request = s.recv_until(b"\r\n\r\n")
        if b"Proxy-Authorization: Basic " in request:
            s.send(b"HTTP/1.0 200 OK\r\n\r\n" + FAKE_TARGET_BANNER)
            return s.echo()
        s.send(b'HTTP/1.0 407 Auth\r\nProxy-Authenticate: Basic realm="x"\r\n\r\n')

    counter = tmp_path / "asked"
    askpass = askpass_script(tmp_path, PASSWORD, counter)
    with FakeServer(closing_basic) as p:
        r = run_without_tty([*NCFD, "-F", "-P", USER, "-X", "connect", "-x", f"127.0.0.1:{p.port}", "h", "22"],
                            {"SSH_ASKPASS": str(askpass), "DISPLAY": ":0"})  # fmt: skip
        assert r.returncode == 0, r.stderr
        r.close()
        assert len(p.sessions) == 2
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode())
        assert b"Proxy-Authorization: Basic " + token in p.sessions[1].received
    assert counter.read_text() == "x"  # asked once


# --- where the password comes from ----------------------------------------------------------


def askpass_script(tmp_path: Path, password: str, counter: Path) -> Path:
    script = tmp_path / "askpass"
    script.write_text(f'#!/bin/sh\nprintf x >> {counter}\nprintf "%s" "$1" > {counter}.prompt\necho "{password}"\n')
    script.chmod(0o755)
    return script


def run_without_tty(argv: list[str], extra_env: dict[str, str]) -> Handoff:
    """No controlling terminal (a new session), as under a GUI or a detached ssh."""
    env = {k: v for k, v in os.environ.items() if k not in ("NCFD_PROXY_PASSWORD", "SSH_ASKPASS_REQUIRE")}
    return run_fdpass(["setsid", *argv], env={**env, **extra_env})


@pytest.fixture
def basic_proxy() -> Iterator[FakeServer]:
    def handler(s: Session) -> None:
        request = s.recv_until(b"\r\n\r\n")
        s.received = request
        good = base64.b64encode(f"{USER}:{PASSWORD}".encode())
        if b"Proxy-Authorization: Basic " + good in request:
            s.send(b"HTTP/1.1 200 OK\r\n\r\n" + FAKE_TARGET_BANNER)
            return s.echo()
        s.send(b'HTTP/1.0 407 Auth\r\nProxy-Authenticate: Basic realm="x"\r\n\r\n')

    with FakeServer(handler) as server:
        yield server


def connect_argv(p: FakeServer, *extra: str) -> list[str]:
    return [*NCFD, "-F", "-P", USER, *extra, "-X", "connect", "-x", f"127.0.0.1:{p.port}", "h", "22"]


def test_askpass_without_a_terminal(basic_proxy: FakeServer, tmp_path: Path) -> None:
    counter = tmp_path / "asked"
    r = run_without_tty(connect_argv(basic_proxy), {"SSH_ASKPASS": str(askpass_script(tmp_path, PASSWORD, counter)),
                                                     "DISPLAY": ":0"})  # fmt: skip
    assert r.returncode == 0, r.stderr
    r.close()
    prompt = f"Proxy password for {USER}@127.0.0.1:{basic_proxy.port}: "
    assert Path(f"{counter}.prompt").read_text() == prompt


def test_no_terminal_and_no_askpass_is_a_clear_error(basic_proxy: FakeServer) -> None:
    r = run_without_tty(connect_argv(basic_proxy), {})
    assert r.returncode == 6 and r.sock is None
    assert r.stderr.startswith("ncfd: cannot ask for the proxy password: no terminal")


def test_password_file_must_be_private(basic_proxy: FakeServer, tmp_path: Path) -> None:
    secret = tmp_path / "proxy-password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o644)
    r = run_without_tty(connect_argv(basic_proxy, "--proxy-password-file", str(secret)), {})
    assert r.returncode == 2 and r.sock is None
    assert "is readable by others: chmod 600 it" in r.stderr
    secret.chmod(stat.S_IRUSR | stat.S_IWUSR)
    r = run_without_tty(connect_argv(basic_proxy, "--proxy-password-file", str(secret)), {})
    assert r.returncode == 0, r.stderr
    r.close()


def test_a_symlinked_password_file_is_refused(basic_proxy: FakeServer, tmp_path: Path) -> None:
    """Opened with O_NOFOLLOW: a link planted where the file is expected is not followed, even to a
    private file."""
    secret = tmp_path / "elsewhere"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(stat.S_IRUSR | stat.S_IWUSR)
    link = tmp_path / "proxy-password"
    link.symlink_to(secret)
    r = run_without_tty(connect_argv(basic_proxy, "--proxy-password-file", str(link)), {})
    assert r.sock is None and r.returncode == 2, r.stderr
    assert r.stderr == f"ncfd: cannot read proxy password file {link}: Too many levels of symbolic links\n"
    assert all(b"Proxy-Authorization" not in s.received for s in basic_proxy.settled())


@pytest.mark.parametrize("source", ["environment", "file", "askpass"])
def test_an_empty_password_is_refused(basic_proxy: FakeServer, tmp_path: Path, source: str) -> None:
    """An empty password is a mistake (an unset variable, an empty file, an askpass dismissed with
    Enter), said as such rather than sent and reported as the proxy's rejection."""
    argv, env = connect_argv(basic_proxy), {}
    if source == "environment":
        env = {"NCFD_PROXY_PASSWORD": ""}
    elif source == "file":
        empty = tmp_path / "proxy-password"
        empty.write_text("\n")
        empty.chmod(stat.S_IRUSR | stat.S_IWUSR)
        argv = connect_argv(basic_proxy, "--proxy-password-file", str(empty))
    else:
        env = {"SSH_ASKPASS": str(askpass_script(tmp_path, "", tmp_path / "asked")), "DISPLAY": ":0"}
    r = run_without_tty(argv, env)
    assert r.sock is None and r.returncode == 6, r.stderr
    assert r.stderr == f"ncfd: empty proxy password for {USER} at HTTP proxy 127.0.0.1:{basic_proxy.port}\n"
    assert all(b"Proxy-Authorization" not in s.received for s in basic_proxy.settled())


def test_askpass_runs_once_when_a_stale_digest_nonce_is_answered_again(tmp_path: Path) -> None:
    """Digest computes each answer from the password: the second, for the proxy's fresh nonce,
    uses the password already asked for."""
    target = "h:22"

    def challenge(nonce: str, stale: str = "") -> bytes:
        return (f'HTTP/1.1 407 Auth\r\nProxy-Authenticate: Digest realm="x", nonce="{nonce}", qop="auth"{stale}\r\n'
                "Content-Length: 0\r\n\r\n").encode()  # fmt: skip

    def answered(request: bytes, nonce: str) -> bool:
        line = next(x for x in request.decode().split("\r\n") if x.startswith("Proxy-Authorization: Digest "))
        p = parse_challenges([line.split(": ", 1)[1]])[0].params

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1, ha2 = md5(f"{USER}:x:{PASSWORD}"), md5(f"CONNECT:{target}")
        expected = md5(f"{ha1}:{nonce}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
        return p["nonce"] == nonce and p["response"] == expected

    def stale_digest(s: Session) -> None:
        s.recv_until(b"\r\n\r\n")
        s.send(challenge("first"))
        if answered(s.recv_until(b"\r\n\r\n"), "first"):
            s.send(challenge("second", ', stale="true"'))
            if answered(s.recv_until(b"\r\n\r\n"), "second"):
                s.send(b"HTTP/1.1 200 OK\r\n\r\n" + FAKE_TARGET_BANNER)
                return s.echo()
        s.send(b"HTTP/1.1 403 Wrong\r\n\r\n")

    counter = tmp_path / "asked"
    askpass = askpass_script(tmp_path, PASSWORD, counter)
    with FakeServer(stale_digest) as p:
        r = run_without_tty(connect_argv(p), {"SSH_ASKPASS": str(askpass), "DISPLAY": ":0"})
        assert r.returncode == 0, r.stderr
        assert r.read_exactly(len(FAKE_TARGET_BANNER)) == FAKE_TARGET_BANNER
        r.close()
        assert len(p.settled()) == 1
    assert counter.read_text() == "x"  # asked once
