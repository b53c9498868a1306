"""Proxy URLs (curl's conventions) and --proxy-env with no_proxy: parsing, and what goes on the wire."""

from __future__ import annotations

import pytest

from ncfd.deadline import Deadline
from ncfd.errors import UsageError
from ncfd.options import parse_args
from ncfd.request import ConnectSpec, Credentials, Route
from ncfd.route.environment import excluded, proxy_from_environment
from ncfd.tunnel.chain import Chain


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
