"""--proxy-header and the API's headers=: the exact bytes on the wire (a scripted proxy), a real squid
that lets a CONNECT through only with a token header and a browser's User-Agent (the real ssh
logging in through it, alone, behind a chain's hops, named by a PAC, behind TLS), what -v shows, and
each header that would break the request refused by name, its value never shown."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.fakeservers import FAKE_TARGET_BANNER, FakeServer, Session, http_proxy
from tests.support.fdharness import NCFD, run_ncfd
from tests.support.proxy_headers import AGENT, TOKEN, fdpass, header_file

OK = b"HTTP/1.1 200 Connection established\r\n\r\n"


@pytest.fixture
def headers(tmp_path: Path) -> Path:
    return header_file(tmp_path, f"X-Token: {TOKEN}\nUser-Agent: {AGENT}\n")


# --- on the wire ------------------------------------------------------------------------------------


def test_the_headers_go_after_host_as_given_and_a_user_agent_replaces_ncfds(tmp_path: Path) -> None:
    path = header_file(tmp_path, f"X-Token:   {TOKEN}  \r\n\n  \nUser-Agent: {AGENT}\nX-Trace: a\tb, c=d\n")
    with FakeServer(http_proxy(OK + FAKE_TARGET_BANNER)) as proxy:
        r = fdpass("--proxy-header", "X-Api-Version: 2", "--proxy-header", f"@{path}", "-X", "connect",
                   "-x", f"127.0.0.1:{proxy.port}", target=proxy)  # fmt: skip
        r.assert_banner_and_echo(FAKE_TARGET_BANNER)
        target = f"127.0.0.1:{proxy.port}"
        assert proxy.sessions[0].received.startswith(
            f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nX-Api-Version: 2\r\nX-Token: {TOKEN}\r\n"
            f"User-Agent: {AGENT}\r\nX-Trace: a\tb, c=d\r\n\r\n".encode()
        )


def test_the_caller_proxy_authorization_is_sent_alone_and_a_407_to_it_ends_the_run(tmp_path: Path) -> None:
    path = header_file(tmp_path, f"Proxy-Authorization: Bearer {TOKEN}\n")
    challenge = b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="x"\r\n'
    with FakeServer(http_proxy(challenge + b"Content-Length: 0\r\n\r\n", then_echo=False)) as proxy:
        r = fdpass("--proxy-header", f"@{path}", "-X", "connect", "-x", f"127.0.0.1:{proxy.port}", target=proxy)
        sessions = proxy.settled()
    assert r.sock is None and r.returncode == 6, r.stderr
    assert r.stderr == (
        f'ncfd: HTTP proxy 127.0.0.1:{proxy.port} refused CONNECT 127.0.0.1:{proxy.port}: "HTTP/1.1 407 Proxy'
        ' Authentication Required": it did not take the Proxy-Authorization header given\n'
    )
    assert TOKEN not in r.stderr
    [session] = sessions
    assert session.received.count(b"Proxy-Authorization:") == 1


def test_v_shows_the_headers_with_secret_looking_values_hidden(tmp_path: Path) -> None:
    hidden = ["Authorization", "Proxy-Authorization", "Cookie", "X-Auth-User", "X-API-Key", "X-Client-Secret",
              "X-Access-Token", "X-Password"]  # fmt: skip
    path = header_file(tmp_path, "".join(f"{name}: {TOKEN}-{i}\n" for i, name in enumerate(hidden)))
    with FakeServer(http_proxy(OK + FAKE_TARGET_BANNER)) as proxy:
        r = fdpass("-v", "--proxy-header", f"@{path}", "--proxy-header", f"User-Agent: {AGENT}", "-X", "connect",
                   "-x", f"127.0.0.1:{proxy.port}", target=proxy)  # fmt: skip
        r.assert_banner_and_echo(FAKE_TARGET_BANNER)
        for i, name in enumerate(hidden):
            assert f"\r\n{name}: {TOKEN}-{i}\r\n".encode() in proxy.sessions[0].received
    shown = "; ".join(f"{name}: ***" for name in hidden)
    assert f"ncfd: sending CONNECT 127.0.0.1:{proxy.port} with the headers {shown}; User-Agent: {AGENT}\n" in r.stderr
    assert TOKEN not in r.stderr


def test_the_headers_go_to_every_http_hop_of_a_chain_and_not_to_a_socks_one(tmp_path: Path) -> None:
    def socks_then_http(s: Session) -> None:  # a SOCKS5 hop that gets an HTTP request fails here
        assert s.recv_exactly(3) == b"\x05\x01\x00"
        s.send(b"\x05\x00")
        s.recv_exactly(4 + 1 + len("hop2.example") + 2)
        s.send(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x16")
        s.recv_until(b"\r\n\r\n")
        s.send(OK)
        s.recv_until(b"\r\n\r\n")
        s.send(OK + FAKE_TARGET_BANNER)
        s.echo()

    with FakeServer(socks_then_http) as proxy:
        r = fdpass("--proxy-header", "X-Hop: both", "-x", f"socks5h://127.0.0.1:{proxy.port}",
                   "-x", "http://hop2.example:3128", "-x", "http://hop3.example:3128", target=proxy)  # fmt: skip
        r.assert_banner_and_echo(FAKE_TARGET_BANNER)
        received = proxy.sessions[0].received
    socks, http = received[:22], received[22:]
    assert b"X-Hop" not in socks and http.count(b"\r\nX-Hop: both\r\n") == 2
    assert http.startswith(b"CONNECT hop3.example:3128 HTTP/1.1\r\n")


# --- a real proxy that insists --------------------------------------------------------------------------


def test_a_pacs_proxy_gets_the_plain_headers_and_not_the_secret_ones(tmp_path: Path) -> None:
    pac = tmp_path / "proxy.pac"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with FakeServer(http_proxy(OK + FAKE_TARGET_BANNER)) as proxy:
        pac.write_text(f'function FindProxyForURL(url, host) {{ return "PROXY 127.0.0.1:{proxy.port}"; }}\n')
        r = fdpass("-v", "--proxy-header", f"User-Agent: {AGENT}", "--proxy-header", f"X-Token: {TOKEN}",
                   "--proxy-header", "Proxy-Authorization: Basic YWxpY2U6aHVudGVyMg==", "--proxy-pac", str(pac),
                   target=proxy, env=env)  # fmt: skip
        r.assert_banner_and_echo(FAKE_TARGET_BANNER)
        target = f"127.0.0.1:{proxy.port}"
        request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: {AGENT}\r\n\r\n".encode()
        assert proxy.sessions[0].received.startswith(request)
    assert (
        f"HTTP proxy 127.0.0.1:{proxy.port} is named by PAC {pac}, not by you: the headers X-Token,"
        " Proxy-Authorization are not sent to it unless --proxy-auth-hosts allows it"
    ) in r.stderr
    assert TOKEN not in r.stderr and "YWxpY2U6aHVudGVyMg" not in r.stderr


# --- usage errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (f"X-Token {TOKEN}", "--proxy-header: a header without a colon: write Name: value"),
        (f": {TOKEN}", "--proxy-header: a header without a name before its colon: write Name: value"),
        (f"X-Token: {TOKEN}\nX-Evil: 1",
         "--proxy-header: the value of header X-Token has a line feed (LF), which would break the request"),
        (f"X-Token: {TOKEN}\r", "--proxy-header: the value of header X-Token has a carriage return (CR), which would"
                                " break the request"),
        (f"X-Token: {TOKEN}\x1b[2J", "--proxy-header: the value of header X-Token has a control character ('\\x1b'),"
                                     " which would break the request"),
        (f"X Token: {TOKEN}", "--proxy-header: header name 'X Token' is not an HTTP token (no spaces, no separators)"),
        (f"Host: {TOKEN}", "--proxy-header: header Host would break the request: ncfd sends the destination as Host"),
        ("content-length: 5", "--proxy-header: header content-length would break the request: a CONNECT request has"
                              " no body"),
        ("Transfer-Encoding: chunked", "--proxy-header: header Transfer-Encoding would break the request: a CONNECT"
                                       " request has no body"),
    ],
)  # fmt: skip
def test_a_header_that_would_break_the_request_is_a_usage_error_naming_it(header: str, message: str) -> None:
    r = run_ncfd(["-F", "--proxy-header", header, "-X", "connect", "-x", "127.0.0.1:9", "h", "22"])
    assert (r.returncode, r.stdout, r.stderr.decode()) == (2, b"", f"ncfd: {message}\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"X-Token: {TOKEN}\n{TOKEN}\n", "line 2: a header without a colon: write Name: value"),
        (f"X-Token: {TOKEN}\x00\n", "line 1: the value of header X-Token has a NUL, which would break the request"),
        ("\nX-Token: a\rb\n", "line 2: the value of header X-Token has a carriage return (CR), which would break"),
    ],
)
def test_a_bad_line_of_the_file_is_named_by_its_number(tmp_path: Path, text: str, message: str) -> None:
    path = header_file(tmp_path, text)
    r = run_ncfd(["--proxy-header", f"@{path}", "-X", "connect", "-x", "127.0.0.1:9", "h", "22"])
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1, r.stderr
    assert r.stderr.decode().startswith(f"ncfd: --proxy-header file {path} {message}")
    assert TOKEN.encode() not in r.stderr


def test_a_value_that_is_not_text_is_a_usage_error() -> None:
    """A byte that is not UTF-8 in argv (Python holds it as a lone surrogate) cannot be sent."""
    r = subprocess.run([*NCFD, "--proxy-header", b"X-Trace: caf\xe9", "-X", "connect", "-x", "127.0.0.1:9", "h", "22"],
                       capture_output=True)  # fmt: skip
    assert (r.returncode, r.stderr.decode()) == (
        2, "ncfd: --proxy-header: the value of header X-Trace is not valid text (sent as UTF-8)\n"
    )  # fmt: skip


def test_a_header_file_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    """Not read: a FIFO blocks its open until a writer comes, and its read until the writer ends."""
    fifo = tmp_path / "headers"
    os.mkfifo(fifo, 0o600)
    r = run_ncfd(["--proxy-header", f"@{fifo}", "-X", "connect", "-x", "127.0.0.1:9", "h", "22"], timeout=10)
    assert (r.returncode, r.stderr.decode()) == (2, f"ncfd: --proxy-header file {fifo} is not a regular file\n")


def test_the_file_must_be_private(tmp_path: Path) -> None:
    path = header_file(tmp_path, f"X-Token: {TOKEN}\n", mode=0o644)
    r = run_ncfd(["--proxy-header", f"@{path}", "-X", "connect", "-x", "127.0.0.1:9", "h", "22"])
    assert (r.returncode, r.stderr.decode()) == (
        2, f"ncfd: --proxy-header file {path} is readable by others: chmod 600 it (as ssh requires of keys)\n"
    )  # fmt: skip


@pytest.mark.parametrize("route", [["-P", "alice"], ["-x", "http://alice@127.0.0.1:9"], ["--proxy-netrc", __file__]])
def test_a_proxy_authorization_beside_ncfds_own_authentication_is_a_usage_error(route: list[str]) -> None:
    x = [] if "-x" in route else ["-X", "connect", "-x", "127.0.0.1:9"]
    r = run_ncfd(["--proxy-header", "Proxy-Authorization: Bearer x", *route, *x, "h", "22"])
    assert (r.returncode, r.stderr.decode()) == (
        2, "ncfd: header Proxy-Authorization would break the request: ncfd authenticates to the proxy (-P,"
           " --proxy-netrc or a user@ in a proxy URL); give one or the other\n"
    )  # fmt: skip
