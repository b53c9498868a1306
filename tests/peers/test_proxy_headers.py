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
from tests.support.fdharness import ncfd_command
from tests.support.proxy_headers import AGENT, TOKEN, fdpass, header_file


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
