"""--proxy-header and the API's headers=: the exact bytes on the wire (a scripted proxy), a real squid
that lets a CONNECT through only with a token header and a browser's User-Agent (the real ssh
logging in through it, alone, behind a chain's hops, named by a PAC, behind TLS), what -v shows, and
each header that would break the request refused by name, its value never shown."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import peers
from tests.support.fakeservers import BANNER, FakeServer, Session, http_proxy
from tests.support.fdharness import NCFD, Handoff, ncfd_command, run_fdpass, run_ncfd

TOKEN = "s3cret-t0ken"
AGENT = "CorpBrowser/7.1"
OK = b"HTTP/1.1 200 Connection established\r\n\r\n"


def header_file(tmp_path: Path, text: str, name: str = "proxy-headers", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def squid_token() -> Iterator[peers.Proxy]:
    """squid refusing (403) a CONNECT without X-Token: TOKEN or without a User-Agent of AGENT's."""
    access = [f"acl token req_header X-Token ^{TOKEN}$", "acl browser browser ^CorpBrowser/",
              "http_access deny !token", "http_access deny !browser"]  # fmt: skip
    with peers.squid(access_lines=access) as proxy:
        yield proxy


@pytest.fixture
def headers(tmp_path: Path) -> Path:
    return header_file(tmp_path, f"X-Token: {TOKEN}\nUser-Agent: {AGENT}\n")


def fdpass(*args: str, target: peers.Target | FakeServer, env: dict[str, str] | None = None) -> Handoff:
    return run_fdpass([*NCFD, "-F", *args, "127.0.0.1", str(target.port)], env=env)


# --- on the wire ------------------------------------------------------------------------------------


def test_the_headers_go_after_host_as_given_and_a_user_agent_replaces_ncfds(tmp_path: Path) -> None:
    path = header_file(tmp_path, f"X-Token:   {TOKEN}  \r\n\n  \nUser-Agent: {AGENT}\nX-Trace: a\tb, c=d\n")
    with FakeServer(http_proxy(OK + BANNER)) as proxy:
        r = fdpass("--proxy-header", "X-Api-Version: 2", "--proxy-header", f"@{path}", "-X", "connect",
                   "-x", f"127.0.0.1:{proxy.port}", target=proxy)  # fmt: skip
        r.assert_banner_and_echo(BANNER)
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
    with FakeServer(http_proxy(OK + BANNER)) as proxy:
        r = fdpass("-v", "--proxy-header", f"@{path}", "--proxy-header", f"User-Agent: {AGENT}", "-X", "connect",
                   "-x", f"127.0.0.1:{proxy.port}", target=proxy)  # fmt: skip
        r.assert_banner_and_echo(BANNER)
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
        s.send(OK + BANNER)
        s.echo()

    with FakeServer(socks_then_http) as proxy:
        r = fdpass("--proxy-header", "X-Hop: both", "-x", f"socks5h://127.0.0.1:{proxy.port}",
                   "-x", "http://hop2.example:3128", "-x", "http://hop3.example:3128", target=proxy)  # fmt: skip
        r.assert_banner_and_echo(BANNER)
        received = proxy.sessions[0].received
    socks, http = received[:22], received[22:]
    assert b"X-Hop" not in socks and http.count(b"\r\nX-Hop: both\r\n") == 2
    assert http.startswith(b"CONNECT hop3.example:3128 HTTP/1.1\r\n")


# --- a real proxy that insists --------------------------------------------------------------------------


def test_ssh_logs_in_through_squid_with_the_headers_from_a_file(
    squid_token: peers.Proxy, sshd: peers.Sshd, headers: Path
) -> None:
    command = f"{ncfd_command()} -F --proxy-header @{headers} -X connect -x {squid_token.address} %h %p"
    r = subprocess.run(sshd.ssh_argv(command, "echo", "in", extra_opts=("-v",)), capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "in\n"), f"{r.stderr}\n{squid_token.log_text()}"
    assert "Executing proxy dialer command" in r.stderr  # ssh's ProxyUseFdpass path


def test_the_file_is_found_under_home_as_an_ssh_config_line_names_it(
    squid_token: peers.Proxy, banner_target: peers.Target, headers: Path
) -> None:
    # No shell expands ~ after @: ncfd does.
    env = {**os.environ, "HOME": str(headers.parent)}
    r = fdpass("--proxy-header", f"@~/{headers.name}", "-X", "connect", "-x", squid_token.address,
               target=banner_target, env=env)  # fmt: skip
    r.assert_banner_and_echo(banner_target.banner)


@pytest.mark.parametrize(
    "given",
    [[], [f"X-Token: {TOKEN}"], [f"User-Agent: {AGENT}"], [f"X-Token: {TOKEN}x", f"User-Agent: {AGENT}"]],
    ids=["none", "ncfd's user-agent", "no token", "wrong token"],
)
def test_without_what_squid_insists_on_it_refuses(
    squid_token: peers.Proxy, banner_target: peers.Target, given: list[str]
) -> None:
    args = [arg for header in given for arg in ("--proxy-header", header)]
    r = fdpass(*args, "-X", "connect", "-x", squid_token.address, target=banner_target)
    assert r.sock is None and r.returncode == 5, r.stderr
    assert r.stderr == (
        f"ncfd: HTTP proxy {squid_token.address} refused CONNECT 127.0.0.1:{banner_target.port}:"
        ' "HTTP/1.1 403 Forbidden"\n'
    )


def test_behind_a_chains_first_hop(
    squid_token: peers.Proxy, tinyproxy: peers.Proxy, dante: peers.Proxy, banner_target: peers.Target, headers: Path
) -> None:
    for first in (f"http://{tinyproxy.address}", f"socks5h://{dante.address}"):
        r = fdpass("--proxy-header", f"@{headers}", "-x", first, "-x", f"http://{squid_token.address}",
                   target=banner_target)  # fmt: skip
        r.assert_banner_and_echo(banner_target.banner)


def test_at_an_https_proxy(squid_token: peers.Proxy, banner_target: peers.Target, headers: Path) -> None:
    with peers.stunnel(squid_token) as tls:
        r = fdpass("--proxy-header", f"@{headers}", "-x", f"https://localhost:{tls.port}", "--proxy-cacert",
                   str(tls.cafile), target=banner_target)  # fmt: skip
        r.assert_banner_and_echo(banner_target.banner)


def test_at_the_proxy_a_pac_names_a_token_goes_only_where_allowed(
    squid_token: peers.Proxy, banner_target: peers.Target, headers: Path, tmp_path: Path
) -> None:
    """A header that may hold a secret is kept from a PAC's proxy as a password is (WPAD's PAC is
    anybody's answer), unless --proxy-auth-hosts allows that proxy."""
    pac = tmp_path / "proxy.pac"
    pac.write_text(f'function FindProxyForURL(url, host) {{ return "PROXY {squid_token.address}"; }}\n')
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    r = fdpass("--proxy-header", f"@{headers}", "--proxy-pac", str(pac), target=banner_target, env=env)
    assert (r.sock, r.returncode) == (None, 5), r.stderr
    assert r.stderr.endswith('"HTTP/1.1 403 Forbidden"\n'), r.stderr
    r = fdpass("--proxy-header", f"@{headers}", "--proxy-auth-hosts", "127.0.0.1", "--proxy-pac", str(pac),
               target=banner_target, env=env)  # fmt: skip
    r.assert_banner_and_echo(banner_target.banner)


def test_a_pacs_proxy_gets_the_plain_headers_and_not_the_secret_ones(tmp_path: Path) -> None:
    pac = tmp_path / "proxy.pac"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with FakeServer(http_proxy(OK + BANNER)) as proxy:
        pac.write_text(f'function FindProxyForURL(url, host) {{ return "PROXY 127.0.0.1:{proxy.port}"; }}\n')
        r = fdpass("-v", "--proxy-header", f"User-Agent: {AGENT}", "--proxy-header", f"X-Token: {TOKEN}",
                   "--proxy-header", "Proxy-Authorization: Basic YWxpY2U6aHVudGVyMg==", "--proxy-pac", str(pac),
                   target=proxy, env=env)  # fmt: skip
        r.assert_banner_and_echo(BANNER)
        target = f"127.0.0.1:{proxy.port}"
        request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: {AGENT}\r\n\r\n".encode()
        assert proxy.sessions[0].received.startswith(request)
    assert (
        f"HTTP proxy 127.0.0.1:{proxy.port} is named by PAC {pac}, not by you: the headers X-Token,"
        " Proxy-Authorization are not sent to it unless --proxy-auth-hosts allows it"
    ) in r.stderr
    assert TOKEN not in r.stderr and "YWxpY2U6aHVudGVyMg" not in r.stderr


# --- the API ------------------------------------------------------------------------------------------


def test_the_api_takes_a_mapping_or_pairs(squid_token: peers.Proxy, banner_target: peers.Target) -> None:
    import ncfd

    proxy = f"http://{squid_token.address}"
    given: list[dict[str, str] | list[tuple[str, str]]] = [{"X-Token": TOKEN, "User-Agent": AGENT},
                                                          [("User-Agent", AGENT), ("X-Token", TOKEN)]]  # fmt: skip
    for headers in given:
        with ncfd.connect("127.0.0.1", banner_target.port, proxy=proxy, headers=headers, timeout=20) as sock:
            sock.settimeout(10)
            assert sock.recv(len(banner_target.banner), socket.MSG_WAITALL) == banner_target.banner
    with pytest.raises(ncfd.ProxyError, match=r'refused CONNECT .*: "HTTP/1\.1 403 Forbidden"$'):
        ncfd.connect("127.0.0.1", banner_target.port, proxy=proxy, headers={"X-Token": TOKEN}, timeout=20)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Token": "a\x00b"}, "headers=: the value of header X-Token has a NUL, which would break the request"),
        ([("X-Token", "a\r\nX-Evil: 1")],
         "headers=: the value of header X-Token has a carriage return (CR), which would break the request"),
        ({"HOST": "elsewhere"}, "headers=: header HOST would break the request: ncfd sends the destination as Host"),
        ({"X-Token:": "v"}, "headers=: header name 'X-Token:' is not an HTTP token (no spaces, no separators)"),
        ("X-Token: v", "headers= takes (name, value) pairs or a mapping, not str"),
        (123, "headers= takes (name, value) pairs or a mapping, not int"),
        ({"X-Trace": "caf\udce9"}, "headers=: the value of header X-Trace is not valid text (sent as UTF-8)"),
        ([("X-Token", 1)], "headers= takes (name, value) pairs of strings, not tuple"),
    ],
)  # fmt: skip
def test_the_api_refuses_what_would_break_the_request(headers: object, message: str) -> None:
    import ncfd

    with pytest.raises(ncfd.UsageError) as raised:
        ncfd.connect("127.0.0.1", 9, proxy="http://127.0.0.1:9", headers=headers)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_the_api_refuses_a_proxy_authorization_beside_its_own() -> None:
    import ncfd

    with pytest.raises(ncfd.UsageError, match=r"^header Proxy-Authorization would break the request: ncfd "):
        ncfd.connect("h", 22, proxy="http://p:3128", user="u", headers={"Proxy-Authorization": "Bearer x"})


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
