"""Proxy URLs (curl's conventions) and --proxy-env with no_proxy: parsing, and what goes on the wire."""

from __future__ import annotations

import os

import pytest

import ncfd
from ncfd.deadline import Deadline
from ncfd.errors import UsageError
from ncfd.options import parse_args
from ncfd.proxy_env import excluded, proxy_from_environment
from ncfd.spec import ConnectSpec, Credentials, Route
from ncfd.tunnel import Chain
from tests.support.fakeservers import BANNER, FakeServer, Session, socks5_proxy
from tests.support.fdharness import NCFD, run_fdpass, run_ncfd


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("socks5h://p", ("p", 1080, "5", False, True)),
        ("socks5://p:1081", ("p", 1081, "5", False, False)),
        ("socks4://p", ("p", 1080, "4", False, False)),
        ("socks4a://p", ("p", 1080, "4a", False, True)),
        ("http://p", ("p", 3128, "connect", False, True)),
        ("HTTP://p:8080/", ("p", 8080, "connect", False, True)),
        ("https://p", ("p", 443, "connect", True, True)),
        ("http://[::1]:3129", ("::1", 3129, "connect", False, True)),
    ],
)
def test_url_schemes_and_default_ports(url: str, expected: tuple[str, int, str, bool, bool]) -> None:
    [p] = parse_args(["-x", url, "h", "22"]).proxies
    assert (p.host, p.port, p.protocol, p.tls, p.remote_dns) == expected


def test_url_user_and_password_are_decoded_and_the_password_warned_about() -> None:
    o = parse_args(["-x", "http://al%40ice:p%3Ass@p", "h", "22"])
    assert (o.proxies[0].user, o.proxies[0].password) == ("al@ice", "p:ss")
    assert len(o.warnings) == 1 and "visible to every user in the process list" in o.warnings[0]
    assert "p:ss" not in o.warnings[0] and "p%3Ass" not in o.warnings[0]


def test_P_fills_in_hops_without_a_user() -> None:
    o = parse_args(["-P", "bob", "-x", "socks5h://alice@a", "-x", "http://b", "h", "22"])
    spec = ConnectSpec("h", 22, [Route(o.proxies)], credentials=Credentials(o.proxy_user))
    assert Chain(spec, spec.routes[0], Deadline(5)).users == ["alice", "bob"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-X", "5", "-x", "http://p"], "-X 5 conflicts with the proxy URL http://p"),
        (["-X", "connect", "-x", "http://u:secret@p"], None),
        (["-X", "4", "-x", "http://u:secret@p"], "conflicts with the proxy URL http://u:***@p"),
        # Each URL carries a password: whatever part of it a message shows, the password is not in it.
        (["-x", "ftp://u:secret@p"], "unsupported proxy URL scheme 'ftp' in ftp://u:***@p"),
        (["-x", "http://u:secret@p/path"], "a proxy URL has no path or query: http://u:***@p/path"),
        (["-x", "http://u:secret@p:99999"], "invalid proxy URL http://u:***@p:99999"),
        (["-x", "socks5h://u:secret@"], "missing proxy host in socks5h://u:***@"),
        (
            ["-x", "u:secret@p1", "-x", "http://u:secret@p2"],
            "a proxy chain (-x given more than once) is written as proxy URLs",
        ),
        (
            ["-x", "https://u:secret@a", "-x", "socks5h://u:secret@b"],
            "after an HTTPS proxy, a chain can only go on through http://",
        ),
        (["-x", "https://u:secret@a", "-x", "https://u:secret@b"], "after an HTTPS proxy"),
        (["--proxy-env", "-x", "p"], "-x and --proxy-env exclude each other: each chooses the route"),
        (["--proxy-pac", "p.pac", "--proxy-auto"], "--proxy-pac and --proxy-auto exclude each other"),
        (["--proxy-pac-optional", "--proxy-auto"], "--proxy-pac-optional goes with --proxy-pac"),
        (["--proxy-pac-optional"], "--proxy-pac-optional goes with --proxy-pac"),
        (["-F", "--show-route"], "--show-route prints the route and connects nothing: not with -F"),
    ],
)
def test_url_usage_errors(argv: list[str], message: str | None) -> None:
    if message is None:
        parse_args([*argv, "h", "22"])
        return
    with pytest.raises(UsageError) as e:
        parse_args([*argv, "h", "22"])
    assert message in str(e.value)
    assert "secret" not in str(e.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:hunter2?@proxy:3128", "http://alice:***@proxy:3128"),  # urlsplit: port "hunter2"
        ("http://alice:hun#ter2@proxy:3128", "http://alice:***@proxy:3128"),  # port "hun"
        ("http://alice:hunter/2@proxy:3128", "http://alice:***@proxy:3128"),
    ],
)
def test_a_password_with_a_url_delimiter_in_it_is_never_shown(url: str, shown: str) -> None:
    """From -x, $https_proxy and the API, the same one line, with no piece of the password in it."""
    reason = f"invalid proxy URL {shown}: write a / ? or # in the user or password as %2F %3F %23"
    r = run_ncfd(["-x", url, "h", "22"])
    assert (r.returncode, r.stdout, r.stderr) == (2, b"", f"ncfd: {reason}\n".encode())
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    r = run_ncfd(["--proxy-env", "h", "22"], env={**env, "https_proxy": url})
    assert (r.returncode, r.stdout, r.stderr) == (2, b"", f"ncfd: $https_proxy: {reason}\n".encode())
    with pytest.raises(ncfd.UsageError) as e:
        ncfd.connect("h", 22, proxy=url)
    assert str(e.value) == reason


def test_a_library_message_about_a_url_with_a_password_quotes_none_of_it() -> None:
    # A fullwidth # normalizes to one: urllib refuses the netloc, quoting it.
    r = run_ncfd(["-x", "http://alice:s3\uff03cret@proxy", "h", "22"])
    assert r.stderr == (
        b"ncfd: invalid proxy URL http://alice:***@proxy: netloc '***' contains invalid characters under NFKC"
        b" normalization\n"
    )
    r = run_ncfd(["-x", "http://alice:s3cret@proxy:31x8", "h", "22"])  # what is not the password is quoted
    assert r.stderr == (
        b"ncfd: invalid proxy URL http://alice:***@proxy:31x8: Port could not be cast to integer value as '31x8'\n"
    )
    r = run_ncfd(["-x", "alice:s3cret@proxy:1080", "h", "22"])  # nc's form: "s3cret@proxy" was the port
    assert r.stderr == (
        b'ncfd: a proxy written host:port has no user: "...@proxy:1080" (put the user in a proxy URL,'
        b" socks5h://user@host, or give -P user)\n"
    )


# --- the environment ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"ALL_PROXY": "socks5h://s:1080"}, "SOCKS5 proxy s:1080"),
        ({"all_proxy": "socks5h://lower", "ALL_PROXY": "socks5h://upper"}, "SOCKS5 proxy lower:1080"),
        ({"HTTPS_PROXY": "web:8080", "ALL_PROXY": "socks5h://s"}, "HTTP proxy web:8080"),
        ({"https_proxy": "https://tls.example"}, "HTTPS proxy tls.example:443"),
        ({"ALL_PROXY": "socks5h://s", "NO_PROXY": "corp.example"}, None),
        ({"ALL_PROXY": "socks5h://s", "no_proxy": "other.example", "NO_PROXY": "corp.example"}, "SOCKS5 proxy s:1080"),
        ({"ALL_PROXY": "socks5h://s", "no_proxy": "*"}, None),
    ],
)
def test_proxy_from_environment_in_curls_order(env: dict[str, str], expected: str | None) -> None:
    proxies = proxy_from_environment("git.corp.example", env)
    assert [str(p) for p in proxies] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("host", "no_proxy", "skip"),
    [
        ("git.corp.example", "corp.example", True),
        ("corp.example", ".corp.example", True),
        ("notcorp.example", "corp.example", False),
        ("GIT.Corp.Example.", "corp.example", True),
        ("10.1.2.3", "10.0.0.0/8", True),
        ("10.1.2.3", "192.168.0.0/16, 10.1.2.3", True),
        ("11.1.2.3", "10.0.0.0/8", False),
        ("2001:db8::5", "2001:db8::/32", True),
        ("[::1]", "::1", True),
        ("localhost", "127.0.0.0/8", False),  # names are never resolved for a CIDR, as in curl
        ("anything", "*", True),
        ("host", "", False),
    ],
)
def test_no_proxy_rules(host: str, no_proxy: str, skip: bool) -> None:
    assert excluded(host, no_proxy) is skip


def test_proxy_env_goes_direct_for_excluded_hosts_and_through_the_proxy_otherwise() -> None:
    def target(s: Session) -> None:
        s.send(BANNER)
        s.echo()

    with FakeServer(target) as t, FakeServer(socks5_proxy()) as p:
        env = {**os.environ, "ALL_PROXY": f"socks5h://127.0.0.1:{p.port}", "NO_PROXY": "127.0.0.0/8"}
        r = run_fdpass([*NCFD, "-F", "--proxy-env", "127.0.0.1", str(t.port)], env=env)
        assert r.returncode == 0 and r.sock is not None
        assert r.sock.getpeername() == ("127.0.0.1", t.port)  # direct
        r.close()
        r = run_fdpass([*NCFD, "-F", "--proxy-env", "example.com", "22"], env=env)
        assert r.returncode == 0 and r.sock is not None
        assert r.sock.getpeername() == ("127.0.0.1", p.port)  # through the proxy
        assert r.read_exactly(len(BANNER)) == BANNER
        r.close()
        assert b"\x03\x0bexample.com" in p.sessions[0].received


def test_socks5_url_resolves_here_socks5h_at_the_proxy() -> None:
    with FakeServer(socks5_proxy()) as p:
        for scheme, wire in [("socks5", b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x16"),
                             ("socks5h", b"\x05\x01\x00\x03\x09localhost\x00\x16")]:  # fmt: skip
            r = run_fdpass([*NCFD, "-F", "-x", f"{scheme}://127.0.0.1:{p.port}", "localhost", "22"])
            assert r.returncode == 0, r.stderr
            r.close()
            assert p.sessions[-1].received == b"\x05\x01\x00" + wire


def test_url_password_warning_on_stderr_without_the_password() -> None:
    r = run_ncfd(["-z", "-x", "socks5h://u:hunter2@127.0.0.1:1", "h", "22"])
    assert r.returncode == 4
    lines = r.stderr.decode().splitlines()
    assert lines[0].startswith("ncfd: warning: the password for SOCKS5 proxy 127.0.0.1:1 in its URL is visible")
    assert "hunter2" not in r.stderr.decode()
