"""The nc-compatible command line: parsing, defaults and usage errors (pure, no sockets)."""

from __future__ import annotations

import socket

import pytest

from ncfd import cli
from ncfd.errors import UsageError
from ncfd.options import parse_args
from ncfd.proxies import parse_proxy_address


def test_bundled_flags_and_attached_values() -> None:
    o = parse_args(["-Fvn", "-w3", "-x127.0.0.1:1080", "-Xconnect", "host", "22"])
    assert (o.fdpass, o.verbose, o.socket.numeric, o.timeout) == (True, True, True, 3)
    [proxy] = o.proxies
    assert (proxy.host, proxy.port, proxy.protocol) == ("127.0.0.1", 1080, "connect")
    assert (o.host, o.port) == ("host", 22)


def test_options_after_operands_as_gnu_getopt() -> None:
    o = parse_args(["host", "22", "-F", "-x", "proxy"])
    assert o.fdpass and len(o.proxies) == 1 and o.host == "host"


@pytest.mark.parametrize(
    ("x", "protocol", "expected"),
    [
        ("proxy", "5", ("proxy", 1080)),
        ("proxy", "4", ("proxy", 1080)),
        ("proxy", "4a", ("proxy", 1080)),
        ("proxy", "connect", ("proxy", 3128)),
        ("proxy:8080", "connect", ("proxy", 8080)),
        ("[::1]", "5", ("::1", 1080)),
        ("[::1]:1081", "connect", ("::1", 1081)),
        ("10.0.0.1:socks", "5", ("10.0.0.1", 1080)),
    ],
)
def test_proxy_address_forms_and_default_ports(x: str, protocol: str, expected: tuple[str, int]) -> None:
    p = parse_proxy_address(x, protocol)
    assert (p.host, p.port) == expected


@pytest.mark.parametrize("value", ["connect", "CONNECT", "Connect", "4", "4A", "4a", "5"])
def test_proxy_protocols(value: str) -> None:
    o = parse_args(["-X", value, "-x", "p", "h", "1"])
    assert [p.protocol for p in o.proxies] == [value.lower()]


def test_x_without_X_means_socks5() -> None:
    o = parse_args(["-x", "p", "h", "1"])
    assert [p.protocol for p in o.proxies] == ["5"]


def test_X_without_x_connects_directly_as_nc() -> None:
    assert parse_args(["-X", "connect", "h", "1"]).proxies == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-X", "6", "-x", "p", "h", "1"], "unsupported proxy protocol"),
        (["-x", "p", "-s", "10.0.0.1", "h", "1"], "no proxy support for local source address"),
        (["-x", "[::1", "h", "1"], "missing closing bracket in proxy"),
        (["-x", "[::1]x", "h", "1"], "garbage proxy port delimiter"),
        (["-x", "::1", "h", "1"], "ambiguous proxy address"),
        (["-x", "p:", "h", "1"], "missing proxy port"),
        (["-x", "p:0", "h", "1"], "proxy port too small: 0"),
        (["-x", "p:nosuchservice", "h", "1"], "proxy port invalid: nosuchservice"),
        (["h", "0"], "port number too small: 0"),
        (["h", "70000"], "port number too large: 70000"),
        (["h", "nosuchservice"], "port number invalid: nosuchservice"),
        (["h", "20-30"], "port ranges are not supported"),
        (["h"], "missing port number"),
        ([], "a destination and one port are required"),
        (["-w", "abc", "h", "1"], "timeout invalid: abc"),
        (["-w", "-1", "h", "1"], "timeout too small: -1"),
        (["-I", "0", "h", "1"], "TCP receive window too small: 0"),
        (["-T", "bogus", "h", "1"], "illegal tos value bogus"),
        (["-l", "h", "1"], "listening (-l) is not supported"),
        (["-u", "h", "1"], "UDP (-u) is not supported"),
        (["-U", "h", "1"], "unix sockets (-U) are not supported"),
        (["-i", "1", "h", "1"], "option -i is not supported"),
        (["-Q", "h", "1"], "invalid option -- 'Q'"),
        (["h", "1", "-x"], "option requires an argument -- 'x'"),
    ],
)
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_args(argv)


AUTHORIZATION = "Proxy-Authorization: Bearer x"
HEADERS = [("Proxy-Authorization", "Bearer x")]
SERVICE = "invalid Kerberos service name 'HTTP/p@R': write service (HTTP) or service@host (HTTP@proxy.example), not"
SERVICE += " a principal (HTTP/proxy.example@REALM)"
BROKEN = "header Proxy-Authorization would break the request: ncfd authenticates to the proxy"


@pytest.mark.parametrize(
    ("argv", "api", "said", "said_by_the_api"),
    [
        (["-x", "p", "--proxy-pac", "f.pac"], {"proxy": "p", "pac": "f.pac"},
         "-x and --proxy-pac exclude each other: each chooses the route",
         "proxy and pac exclude each other: each chooses the route"),
        (["--proxy-key", __file__], {"key": __file__},
         "--proxy-key goes with --proxy-cert (the certificate the key is for)",
         "key goes with cert (the certificate the key is for)"),
        (["--proxy-pac-optional"], {"pac_optional": True},
         "--proxy-pac-optional goes with --proxy-pac", "pac_optional goes with pac"),
        (["-x", "p", "-x", "http://q"], {"proxy": ["p", "http://q"]},
         "a proxy chain (-x given more than once) is written as proxy URLs: socks5h://, http://, ...",
         "a proxy chain is written as proxy URLs: socks5h://, http://, ..."),
        (["--proxy-service-name", "HTTP/p@R"], {"service_name": "HTTP/p@R"},
         f"--proxy-service-name: {SERVICE}", f"service_name=: {SERVICE}"),
        (["-P", "u", "-X", "connect", "-x", "p", "--proxy-header", AUTHORIZATION],
         {"proxy": "http://p", "user": "u", "headers": HEADERS},
         f"{BROKEN} (-P, --proxy-netrc or a user@ in a proxy URL); give one or the other",
         f"{BROKEN} (user=, password= or a user@ in a proxy URL); give one or the other"),
        (["-X", "http", "-x", "p"], {"proxy": "p", "protocol": "http"},
         "unsupported proxy protocol 'http' (use connect, 4, 4A or 5; an HTTP proxy is -X connect)",
         "unsupported proxy protocol 'http' (use connect, 4, 4A or 5)"),
    ],
)  # fmt: skip
def test_a_request_that_does_not_hold_together_is_refused_in_each_faces_words(
    argv: list[str], api: dict[str, object], said: str, said_by_the_api: str
) -> None:
    """One check of the request (ncfd.request) for both faces, each naming its own options."""
    import ncfd

    with pytest.raises(UsageError) as raised:
        parse_args([*argv, "h", "22"])
    assert str(raised.value) == said
    with pytest.raises(UsageError) as raised:
        ncfd.connect("h", 22, **api)  # type: ignore[arg-type]
    assert str(raised.value) == said_by_the_api


def test_what_counts_as_authenticating_beside_a_proxy_authorization_is_each_faces_own() -> None:
    """A password alone counts in the API (password=), not on the command line (the password file
    is read only for a user)."""
    import ncfd

    header = ["--proxy-header", AUTHORIZATION]
    assert parse_args([*header, "--proxy-password-file", __file__, "-X", "connect", "-x", "p", "h", "22"]).proxies
    with pytest.raises(UsageError, match=f"^{BROKEN}"):
        parse_args([*header, "--proxy-netrc", __file__, "-X", "connect", "-x", "p", "h", "22"])
    with pytest.raises(UsageError, match=f"^{BROKEN}"):
        ncfd.connect("h", 22, proxy="http://p", password="x", headers=HEADERS)


def test_auth_hosts_patterns() -> None:
    hosts = parse_args(["--proxy-auth-hosts", " a.example, *.corp ,,", "--proxy-auto", "h", "22"])
    assert hosts.request is not None and hosts.request.credentials.auth_hosts == ("a.example", "*.corp")


def test_service_names_and_tos_keywords() -> None:
    o = parse_args(["-T", "lowdelay", "h", "ssh"])
    assert (o.port, o.socket.tos) == (22, 0x10)
    assert parse_args(["-T", "0x20", "h", "1"]).socket.tos == 0x20


def test_family_flags() -> None:
    assert parse_args(["-4", "h", "1"]).socket.family == socket.AF_INET
    assert parse_args(["-6", "h", "1"]).socket.family == socket.AF_INET6


def test_q_implies_N_and_negative_q_waits_for_ever() -> None:
    o = parse_args(["-q", "0", "h", "1"])
    assert o.half_close and o.quit_after == 0
    o = parse_args(["-q", "-1", "h", "1"])
    assert not o.half_close and o.quit_after is None


def test_default_deadline_bounds_the_handshake_without_w() -> None:
    assert parse_args(["h", "1"]).deadline == 60
    assert parse_args(["-w", "0", "h", "1"]).deadline == 60  # Debian nc: -w 0 means no timeout
    assert parse_args(["-w", "2.5", "h", "1"]).deadline == 2.5


def test_internal_error_is_one_line_saying_how_to_report(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("ncfd.tunnel.failover.open_tunnel", broken)
    assert cli.main(["-z", "127.0.0.1", "22"]) == 70
    err = capfd.readouterr().err
    assert err == (
        "ncfd: internal error (RuntimeError: simulated bug); please report it with the command line"
        " (minus secrets) and the output of -v\n"
    )
