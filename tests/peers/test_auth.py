"""Proxy authentication: each scheme against the real proxy that demands it, the password sources,
wrong passwords, and secrets kept out of every message."""

from __future__ import annotations

import base64
import hashlib
import subprocess

import pytest

from tests.support import peers
from tests.support.auth import LONG_PASSWORD, PASSWORD, USER, with_password
from tests.support.fdharness import NCFD, Handoff, ncfd_command, run_fdpass


def through(proxy: peers.Proxy, target: peers.Target, *args: str, password: str = PASSWORD) -> Handoff:
    argv = [*NCFD, "-F", "-P", USER, *args, "-x", proxy.address, "127.0.0.1", str(target.port)]
    return run_fdpass(argv, env=with_password(password))


def assert_tunnel(r: Handoff, target: peers.Target) -> None:
    assert r.returncode == 0, r.stderr
    assert r.read_exactly(len(target.banner)) == target.banner
    r.close()


def assert_auth_failed(r: Handoff, proxy: peers.Proxy, kind: str = "HTTP") -> None:
    assert r.sock is None and r.returncode == 6, r.stderr
    assert r.stderr == f"ncfd: proxy authentication failed for {USER} at {kind} proxy {proxy.address}\n"
    assert r.elapsed < 15


# --- the matrix: scheme x real proxy --------------------------------------------------------


@pytest.mark.parametrize("scheme", ["basic", "digest"])
def test_squid(squid_auth: peers.ProxyFactory, banner_target: peers.Target, scheme: str) -> None:
    proxy = squid_auth(USER, PASSWORD, schemes=(scheme,))
    assert_tunnel(through(proxy, banner_target, "-X", "connect"), banner_target)
    assert_auth_failed(through(proxy, banner_target, "-X", "connect", password="wrong"), proxy)


def test_squid_ntlm(squid_auth: peers.ProxyFactory, banner_target: peers.Target) -> None:
    # ntlm_fake_auth accepts any credentials: this proves the three-leg exchange on one connection.
    proxy = squid_auth(USER, PASSWORD, schemes=("ntlm",))
    r = through(proxy, banner_target, "-v", "-X", "connect", "-P", "CORP\\alice")
    assert r.stderr.count("connecting to HTTP proxy") == 1, r.stderr
    assert r.stderr.count("with ntlm credentials") == 2
    assert_tunnel(r, banner_target)


def test_strongest_scheme_offered_wins_unless_forced(
    squid_auth: peers.ProxyFactory, banner_target: peers.Target
) -> None:
    proxy = squid_auth(USER, PASSWORD, schemes=("basic", "digest", "ntlm"))
    r = through(proxy, banner_target, "-v", "-X", "connect")
    assert "ntlm challenge as alice" in r.stderr
    assert_tunnel(r, banner_target)
    for forced in ("digest", "basic"):
        r = through(proxy, banner_target, "-v", "-X", "connect", "--proxy-auth", forced)
        assert f"{forced} challenge as alice" in r.stderr
        assert_tunnel(r, banner_target)


def test_tinyproxy_basic(tinyproxy_auth: peers.ProxyFactory, banner_target: peers.Target) -> None:
    password = "pass-word.42"  # tinyproxy's config cannot hold a space or a colon
    proxy = tinyproxy_auth(USER, password)
    assert_tunnel(through(proxy, banner_target, "-X", "connect", password=password), banner_target)
    # tinyproxy answers wrong credentials with 401 and closes the connection.
    assert_auth_failed(through(proxy, banner_target, "-X", "connect", password="wrong"), proxy)


@pytest.mark.parametrize("password", [PASSWORD, LONG_PASSWORD, "pässwörd"])
def test_microsocks_socks5_username_password(
    microsocks_auth: peers.ProxyFactory, banner_target: peers.Target, password: str
) -> None:
    proxy = microsocks_auth(USER, password)
    assert_tunnel(through(proxy, banner_target, password=password), banner_target)
    assert_auth_failed(through(proxy, banner_target, password="wrong"), proxy, "SOCKS5")


@pytest.mark.parametrize("kind", ["squid-digest", "microsocks"])
def test_ssh_logs_in_through_an_authenticating_proxy(
    sshd: peers.Sshd, squid_auth: peers.ProxyFactory, microsocks_auth: peers.ProxyFactory, kind: str
) -> None:
    if kind == "microsocks":
        proxy, protocol = microsocks_auth(USER, PASSWORD), "5"
    else:
        proxy, protocol = squid_auth(USER, PASSWORD, schemes=("digest",)), "connect"
    argv = sshd.ssh_argv(f"{ncfd_command()} -F -P {USER} -X {protocol} -x {proxy.address} %h %p", "echo", "in")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=with_password(PASSWORD))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "in\n"


# --- secrets stay secret --------------------------------------------------------------------


def test_secrets_never_appear_in_verbose_output_or_errors(
    squid_auth: peers.ProxyFactory, banner_target: peers.Target
) -> None:
    forms = [
        PASSWORD,
        base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        base64.b64encode(PASSWORD.encode()).decode(),
        hashlib.md5(f"{USER}:ncfd:{PASSWORD}".encode()).hexdigest(),
    ]
    for scheme in ("basic", "digest"):
        proxy = squid_auth(USER, PASSWORD, schemes=(scheme,))
        for password in (PASSWORD, PASSWORD + "x"):
            r = through(proxy, banner_target, "-v", "-X", "connect", password=password)
            r.close()
            for form in forms:
                assert form not in r.stderr
