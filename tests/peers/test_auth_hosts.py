"""Credentials only where they belong: a proxy a PAC names gets no password unless the user named
it (-x, a --proxy-netrc entry) or allowed it (--proxy-auth-hosts, auth_hosts=), against squid
requiring Basic and microsocks requiring a SOCKS5 password, and the real ssh; Kerberos, free by
default, limited by the same list once given."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import ncfd
from ncfd.errors import Withheld
from tests.support import peers
from tests.support.fdharness import NCFD, Handoff, ncfd_command, run_fdpass

USER = "alice"
PASSWORD = "s3cret pass:word"
DROPPED = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY")


def env_with_password(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    return {**env, "NCFD_PROXY_PASSWORD": PASSWORD, "XDG_CACHE_HOME": str(tmp_path / "cache")}


def pac_file(tmp_path: Path, answer: str) -> Path:
    path = tmp_path / "proxy.pac"
    path.write_text(f'function FindProxyForURL(url, host) {{ return "{answer}"; }}')
    return path


def through_pac(pac: Path, target_port: int, tmp_path: Path, *args: str) -> Handoff:
    argv = ["setsid", *NCFD, "-F", "-P", USER, *args, "--proxy-pac", str(pac), "127.0.0.1", str(target_port)]
    return run_fdpass(argv, env=env_with_password(tmp_path))


def withheld_line(proxy: str, pac: Path, host: str = "127.0.0.1") -> str:
    return (f"ncfd: {proxy} (named by PAC {pac}) asks for a password; ncfd sends passwords only to proxies you "
            f"named: allow it with --proxy-auth-hosts {host}\n")  # fmt: skip


def assert_withheld(r: Handoff, line: str) -> None:
    assert r.sock is None, "a descriptor was passed"
    assert (r.returncode, r.stderr) == (6, line)
    assert r.elapsed < 15


def test_a_pac_named_squid_asking_for_basic_gets_no_password_unless_allowed(
    squid_auth: peers.ProxyFactory, banner_target: peers.Target, tmp_path: Path
) -> None:
    squid = squid_auth(USER, PASSWORD, schemes=("basic",))
    pac = pac_file(tmp_path, f"PROXY {squid.address}")
    before = (squid.workdir / "access.log").read_text()
    r = through_pac(pac, banner_target.port, tmp_path)
    assert_withheld(r, withheld_line(f"HTTP proxy {squid.address}", pac))
    # Squid logs the user of every request that came with credentials: none came.
    assert USER not in (squid.workdir / "access.log").read_text()[len(before) :]
    # Allowed by a pattern (case aside), or by the netrc entry for its host: the same proxy lets us through.
    through_pac(
        pac, banner_target.port, tmp_path, "--proxy-auth-hosts", "proxy.example,127.0.0.*"
    ).assert_banner_and_echo(banner_target.banner)
    netrc = tmp_path / "netrc"
    netrc.write_text(f'machine 127.0.0.1 login {USER} password "{PASSWORD}"\n')
    netrc.chmod(0o600)
    through_pac(pac, banner_target.port, tmp_path, "--proxy-netrc", str(netrc)).assert_banner_and_echo(
        banner_target.banner
    )
    assert f"{USER}" in (squid.workdir / "access.log").read_text()[len(before) :]


def test_ssh_logs_in_through_the_pacs_next_entry_when_the_first_may_not_have_the_password(
    sshd: peers.Sshd, squid_auth: peers.ProxyFactory, squid: peers.Proxy, tmp_path: Path
) -> None:
    asking = squid_auth(USER, PASSWORD, schemes=("basic",))
    pac = pac_file(tmp_path, f"PROXY {asking.address}; PROXY {squid.address}")
    argv = sshd.ssh_argv(f"{ncfd_command()} -F -v -P {USER} --proxy-pac {pac} %h %p", "echo", "in")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env_with_password(tmp_path),
                       stdin=subprocess.DEVNULL)  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr
    assert f"HTTP proxy {asking.address} failed: HTTP proxy {asking.address} (named by PAC {pac}) asks" in r.stderr
    # Alive, it is not remembered as dead.
    assert not (tmp_path / "cache" / "ncfd" / "dead-proxies").exists()
    # Allowed, the first entry itself carries the session.
    argv = sshd.ssh_argv(f"{ncfd_command()} -F -v -P {USER} --proxy-auth-hosts 127.0.0.1 --proxy-pac {pac} %h %p",
                         "echo", "in")  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env_with_password(tmp_path),
                       stdin=subprocess.DEVNULL)  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr
    assert f"HTTP proxy {asking.address} opened the tunnel" in r.stderr


def test_when_no_later_entry_works_the_run_ends_with_the_withheld_password(
    squid_auth: peers.ProxyFactory, banner_target: peers.Target, tmp_path: Path
) -> None:
    squid = squid_auth(USER, PASSWORD, schemes=("basic",))
    dead = [peers.free_port(), peers.free_port()]
    pac = pac_file(tmp_path, f"PROXY 127.0.0.1:{dead[0]}; PROXY {squid.address}; PROXY 127.0.0.1:{dead[1]}")
    r = through_pac(pac, banner_target.port, tmp_path)
    assert_withheld(r, withheld_line(f"HTTP proxy {squid.address}", pac))


def test_the_user_named_proxy_gets_the_password_as_before(
    squid_auth: peers.ProxyFactory, banner_target: peers.Target, tmp_path: Path
) -> None:
    squid = squid_auth(USER, PASSWORD, schemes=("basic",))
    argv = [*NCFD, "-F", "-P", USER, "-X", "connect", "-x", squid.address, "127.0.0.1", str(banner_target.port)]
    run_fdpass(argv, env=env_with_password(tmp_path)).assert_banner_and_echo(banner_target.banner)


def test_a_pac_named_socks5_proxy_gets_no_password_unless_allowed(
    microsocks_auth: peers.ProxyFactory, banner_target: peers.Target, tmp_path: Path
) -> None:
    socks = microsocks_auth(USER, PASSWORD)
    pac = pac_file(tmp_path, f"SOCKS5 {socks.address}")
    r = through_pac(pac, banner_target.port, tmp_path)
    assert_withheld(r, withheld_line(f"SOCKS5 proxy {socks.address}", pac))
    r = through_pac(pac, banner_target.port, tmp_path, "--proxy-auth-hosts", "127.0.0.1")
    r.assert_banner_and_echo(banner_target.banner)


def test_without_a_user_the_message_says_both_things_to_give(
    squid_auth: peers.ProxyFactory, banner_target: peers.Target, tmp_path: Path
) -> None:
    squid = squid_auth(USER, PASSWORD, schemes=("basic",))
    pac = pac_file(tmp_path, f"PROXY {squid.address}")
    argv = ["setsid", *NCFD, "-F", "--proxy-pac", str(pac), "127.0.0.1", str(banner_target.port)]
    r = run_fdpass(argv, env=env_with_password(tmp_path))
    assert_withheld(r, withheld_line(f"HTTP proxy {squid.address}", pac)[:-1] + " (and give -P user)\n")


def test_no_password_is_even_asked_for_a_proxy_that_may_not_have_it(
    squid_auth: peers.ProxyFactory, banner_target: peers.Target, tmp_path: Path
) -> None:
    squid = squid_auth(USER, PASSWORD, schemes=("basic",))
    pac = pac_file(tmp_path, f"PROXY {squid.address}")
    asked = tmp_path / "asked"
    askpass = tmp_path / "askpass"
    askpass.write_text(f'#!/bin/sh\nprintf x >> {asked}\necho "{PASSWORD}"\n')
    askpass.chmod(0o755)
    env = {k: v for k, v in env_with_password(tmp_path).items() if k != "NCFD_PROXY_PASSWORD"}
    argv = ["setsid", *NCFD, "-F", "-P", USER, "--proxy-pac", str(pac), "127.0.0.1", str(banner_target.port)]
    r = run_fdpass(argv, env={**env, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"})
    assert_withheld(r, withheld_line(f"HTTP proxy {squid.address}", pac))
    assert not asked.exists()


def test_the_api_keeps_the_password_from_a_pacs_proxy_unless_auth_hosts_allows_it(
    squid_auth: peers.ProxyFactory, banner_target: peers.Target, tmp_path: Path
) -> None:
    squid = squid_auth(USER, PASSWORD, schemes=("basic",))
    pac = pac_file(tmp_path, f"PROXY {squid.address}")
    asked: list[int] = []

    def password() -> str:
        asked.append(1)
        return PASSWORD

    with pytest.raises(Withheld) as raised:
        ncfd.connect("127.0.0.1", banner_target.port, pac=str(pac), user=USER, password=password, timeout=15)
    assert str(raised.value).endswith("allow it with auth_hosts=['127.0.0.1']") and raised.value.exit_code == 6
    assert asked == []
    with ncfd.connect("127.0.0.1", banner_target.port, pac=str(pac), user=USER, password=password, timeout=15,
                      auth_hosts=["127.0.0.*"]) as sock:  # fmt: skip
        sock.settimeout(10)
        assert sock.recv(len(banner_target.banner)) == banner_target.banner
    assert asked == [1]


# --- Kerberos: anywhere, unless the list is given --------------------------------------------------


def test_a_kerberos_ticket_goes_to_a_pacs_proxy_unless_the_list_is_given_without_it(
    kdc: peers.Kdc, squid_kerberos: peers.Proxy, banner_target: peers.Target, tmp_path: Path
) -> None:
    env = {**{k: v for k, v in os.environ.items() if k not in (*DROPPED, "NCFD_PROXY_PASSWORD", "KRB5_CLIENT_KTNAME")},
           **kdc.env(ccache=tmp_path / "ccache"), "XDG_CACHE_HOME": str(tmp_path / "cache")}  # fmt: skip
    kdc.kinit(env)
    pac = pac_file(tmp_path, f"PROXY {peers.PROXY_NAME}:{squid_kerberos.port}")

    def through(*args: str) -> Handoff:
        argv = ["setsid", *NCFD, "-F", *args, "--proxy-pac", str(pac), "127.0.0.1", str(banner_target.port)]
        return run_fdpass(argv, env=env)

    through().assert_banner_and_echo(banner_target.banner)
    r = through("--proxy-auth-hosts", "*.corp.example")
    proxy = f"HTTP proxy {peers.PROXY_NAME}:{squid_kerberos.port}"
    assert_withheld(r, f"ncfd: {proxy} (named by PAC {pac}) asks for a Kerberos ticket; with --proxy-auth-hosts given, "
                       f"ncfd sends tickets only to proxies you named or it allows: allow it with --proxy-auth-hosts "
                       f"{peers.PROXY_NAME}\n")  # fmt: skip
    through("--proxy-auth-hosts", f"*.corp.example,{peers.PROXY_NAME.upper()}").assert_banner_and_echo(
        banner_target.banner
    )


def test_a_ticket_for_a_named_service_host_goes_to_no_pac_proxy_unless_allowed(
    kdc: peers.Kdc, squid_kerberos: peers.Proxy, banner_target: peers.Target, tmp_path: Path
) -> None:
    """A ticket for HTTP@<the real proxy> is the real proxy's, whatever proxy asks for it: a PAC's
    proxy (WPAD's, an attacker's) could relay it there. Here the PAC names the real proxy by its
    address, so that only --proxy-service-name makes the ticket one it accepts."""
    env = {**{k: v for k, v in os.environ.items() if k not in (*DROPPED, "NCFD_PROXY_PASSWORD", "KRB5_CLIENT_KTNAME")},
           **kdc.env(ccache=tmp_path / "ccache"), "XDG_CACHE_HOME": str(tmp_path / "cache")}  # fmt: skip
    kdc.kinit(env)
    pac = pac_file(tmp_path, f"PROXY 127.0.0.1:{squid_kerberos.port}")
    service = f"HTTP@{peers.PROXY_NAME}"

    def through(*args: str) -> Handoff:
        argv = ["setsid", *NCFD, "-F", "--proxy-service-name", service, *args, "--proxy-pac", str(pac), "127.0.0.1",
                str(banner_target.port)]  # fmt: skip
        return run_fdpass(argv, env=env)

    assert_withheld(through(), f"ncfd: HTTP proxy 127.0.0.1:{squid_kerberos.port} (named by PAC {pac}) asks for a "
                               f"Kerberos ticket; one for {service} could be passed on to that host, and ncfd sends it"
                               " only to proxies you named: allow it with --proxy-auth-hosts 127.0.0.1\n")  # fmt: skip
    through("--proxy-auth-hosts", "127.0.0.1").assert_banner_and_echo(banner_target.banner)
