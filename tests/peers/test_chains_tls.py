"""Proxy chains through two different real proxies, and HTTPS proxies (stunnel in front of
tinyproxy), with the real ssh client and with the fd-receiving harness."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from ncfd.net.tls import trusting
from tests.support import peers
from tests.support.fdharness import NCFD, ncfd_command, run_fdpass, run_ncfd


def ssh(sshd: peers.Sshd, proxy_args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = sshd.ssh_argv(f"{ncfd_command()} -F {proxy_args} %h %p", "echo", "in")
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env)


@pytest.mark.parametrize(
    "chain",
    [
        ("squid", "http", "dante", "socks5h"),
        ("dante", "socks5", "tinyproxy", "http"),
        ("microsocks", "socks5h", "squid", "http"),
    ],
    ids=["squid-then-dante", "dante-then-tinyproxy", "microsocks-then-squid"],
)
def test_chain_of_two_real_proxies(
    request: pytest.FixtureRequest, banner_target: peers.Target, chain: tuple[str, str, str, str]
) -> None:
    first: peers.Proxy = request.getfixturevalue(chain[0])
    second: peers.Proxy = request.getfixturevalue(chain[2])
    argv = [*NCFD, "-F", "-v", "-x", f"{chain[1]}://{first.address}", "-x", f"{chain[3]}://{second.address}"]
    r = run_fdpass([*argv, "localhost", str(banner_target.port)])
    # No TLS anywhere: the descriptor passed is the TCP connection to the first proxy itself.
    assert r.sock is not None and r.sock.getpeername() == ("127.0.0.1", first.port)
    assert "opened the tunnel to 127.0.0.1:" in r.stderr and "opened the tunnel to localhost:" in r.stderr
    r.assert_banner_and_echo(banner_target.banner)


def test_ssh_through_a_chain(sshd: peers.Sshd, dante: peers.Proxy, squid: peers.Proxy) -> None:
    r = ssh(sshd, f"-x socks5h://{dante.address} -x http://{squid.address}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "in\n"


def test_chain_reports_which_hop_failed(dante: peers.Proxy, squid: peers.Proxy) -> None:
    closed = peers.free_port()
    r = run_fdpass([*NCFD, "-F", "-x", f"socks5h://{dante.address}", "-x", f"http://127.0.0.1:{closed}", "h", "22"])
    assert r.returncode == 5 and r.sock is None
    assert r.stderr.startswith(f"ncfd: SOCKS5 proxy {dante.address} could not connect to 127.0.0.1:{closed}")


# --- HTTPS proxies --------------------------------------------------------------------------


def https_args(proxy: peers.TlsProxy, host: str = "localhost") -> list[str]:
    return ["-x", f"https://{host}:{proxy.port}", "--proxy-cacert", str(proxy.cafile)]


def pumps_alive(marker: str) -> int:
    count = 0
    for pid in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, NotADirectoryError, PermissionError):
            continue
        if b"ncfd" in cmdline and marker.encode() in cmdline:
            count += 1
    return count


def test_https_proxy_hands_over_a_socketpair_relayed_by_a_detached_pump(
    https_proxy: peers.TlsProxy, banner_target: peers.Target
) -> None:
    r = run_fdpass([*NCFD, "-F", "-v", *https_args(https_proxy), "127.0.0.1", str(banner_target.port)])
    assert "certificate verified" in r.stderr
    assert r.sock is not None
    assert r.sock.family == socket.AF_UNIX  # a TLS session cannot be passed as a descriptor
    assert pumps_alive(str(banner_target.port)) == 1
    r.assert_banner_and_echo(banner_target.banner)
    # The pump ends when ssh's side closes.
    deadline = time.monotonic() + 10
    while pumps_alive(str(banner_target.port)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pumps_alive(str(banner_target.port)) == 0


def test_https_proxy_by_address_checks_the_ip_in_the_certificate(
    https_proxy: peers.TlsProxy, banner_target: peers.Target
) -> None:
    r = run_fdpass([*NCFD, "-F", *https_args(https_proxy, "127.0.0.1"), "127.0.0.1", str(banner_target.port)])
    r.assert_banner_and_echo(banner_target.banner)


def test_https_proxy_with_an_unknown_ca_is_refused(https_proxy: peers.TlsProxy, tmp_path: Path) -> None:
    r = run_fdpass([*NCFD, "-F", "-x", f"https://localhost:{https_proxy.port}", "h", "22"])
    assert r.returncode == 5 and r.sock is None
    assert r.stderr == (
        f"ncfd: HTTPS proxy localhost:{https_proxy.port}: TLS certificate verification failed: "
        "unable to get local issuer certificate (if a CA of your own signed it, give its certificate with"
        " --proxy-cacert file)\n"
    )
    peers._certificates(tmp_path)  # a CA, but not the one that signed the proxy's certificate
    other = tmp_path / "ca.pem"
    proxy = f"https://localhost:{https_proxy.port}"
    r = run_fdpass([*NCFD, "-F", "-x", proxy, "--proxy-cacert", str(other), "h", "22"])
    assert r.returncode == 5 and r.sock is None
    assert r.stderr == (
        f"ncfd: HTTPS proxy localhost:{https_proxy.port}: TLS certificate verification failed: "
        f"unable to get local issuer certificate (signed by none of the system's CAs nor --proxy-cacert {other})\n"
    )


def test_https_proxy_by_a_name_its_certificate_does_not_carry_is_refused(https_proxy: peers.TlsProxy) -> None:
    # The name resolves to the proxy's address, and its CA is trusted: only the name is wrong.
    peers.require_names(peers.PROXY_NAME)
    r = run_fdpass([*NCFD, "-F", *https_args(https_proxy, peers.PROXY_NAME), "h", "22"])
    assert r.returncode == 5 and r.sock is None
    assert r.stderr == (
        f"ncfd: HTTPS proxy {peers.PROXY_NAME}:{https_proxy.port}: TLS certificate verification failed: "
        f"Hostname mismatch, certificate is not valid for '{peers.PROXY_NAME}'.\n"
    )


def test_proxy_cacert_is_trusted_besides_the_system_cas(https_proxy: peers.TlsProxy) -> None:
    system = ssl.create_default_context().get_ca_certs()
    assert system, "no system CA certificates to compare with"
    trusted = trusting(str(https_proxy.cafile)).get_ca_certs()
    ours = [c for c in trusted if c not in system]
    assert len(trusted) == len(system) + 1 and all(c in trusted for c in system)
    assert ours[0]["subject"] == ((("commonName", "ncfd test CA"),),)


def test_a_proxy_the_system_trusts_is_still_verified_with_proxy_cacert(
    https_proxy: peers.TlsProxy, tinyproxy: peers.Proxy, banner_target: peers.Target
) -> None:
    """SSL_CERT_FILE stands for the system's CAs (a proxy with a public certificate); another
    stunnel's CA is the one given: each proxy is verified, by one or the other."""
    env = {**os.environ, "SSL_CERT_FILE": str(https_proxy.cafile)}
    with peers.stunnel(tinyproxy) as other:
        for proxy in (https_proxy, other):
            argv = [*NCFD, "-F", "-x", f"https://localhost:{proxy.port}", "--proxy-cacert", str(other.cafile)]
            r = run_fdpass([*argv, "127.0.0.1", str(banner_target.port)], env=env)
            r.assert_banner_and_echo(banner_target.banner)


def test_missing_cacert_file(https_proxy: peers.TlsProxy) -> None:
    r = run_fdpass([*NCFD, "-F", "-x", f"https://{https_proxy.address}", "--proxy-cacert", "/nonexistent", "h", "22"])
    assert r.returncode == 2 and r.sock is None
    assert r.stderr == "ncfd: cannot read --proxy-cacert file /nonexistent: No such file or directory\n"


def test_https_proxy_in_relay_mode(https_proxy: peers.TlsProxy, banner_target: peers.Target) -> None:
    # TLS has no half-close, so -N's EOF stays here and the echo server stays open: -q ends it.
    args = ["-q", "1", *https_args(https_proxy), "127.0.0.1", str(banner_target.port)]
    r = run_ncfd(args, input=b"hello\n", timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == banner_target.banner + b"hello\n"


def test_ssh_through_an_https_proxy(sshd: peers.Sshd, https_proxy: peers.TlsProxy) -> None:
    r = ssh(sshd, " ".join(https_args(https_proxy)))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "in\n"


def test_ssh_through_socks_then_https(sshd: peers.Sshd, dante: peers.Proxy, https_proxy: peers.TlsProxy) -> None:
    r = ssh(sshd, f"-x socks5h://{dante.address} " + " ".join(https_args(https_proxy)))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "in\n"


def test_ssh_with_proxy_env(sshd: peers.Sshd, microsocks: peers.Proxy) -> None:
    env = {**os.environ, "ALL_PROXY": f"socks5h://{microsocks.address}", "NO_PROXY": ""}
    r = ssh(sshd, "-v --proxy-env", env=env)
    assert r.returncode == 0, r.stderr
    assert f"SOCKS5 proxy {microsocks.address} opened the tunnel" in r.stderr
    env["NO_PROXY"] = "127.0.0.1"
    r = ssh(sshd, "-v --proxy-env", env=env)
    assert r.returncode == 0, r.stderr
    assert "opened the tunnel" not in r.stderr and "connected to host 127.0.0.1" in r.stderr


def test_cookbook_match_exec_uses_the_proxy_only_where_it_answers(
    sshd: peers.Sshd, squid: peers.Proxy, tmp_path: Path
) -> None:
    """The README's office-network recipe, with the real ssh reading a real ssh_config."""

    def login_through(proxy_port: int) -> str:
        config = tmp_path / "ssh_config"
        ncfd = ncfd_command()
        config.write_text(
            f'Match host 127.0.0.1 exec "{ncfd} -z -w 1 127.0.0.1 {proxy_port} 2>/dev/null"\n'
            f"    ProxyCommand {ncfd} -F -v -X connect -x 127.0.0.1:{proxy_port} %h %p\n"
            "    ProxyUseFdpass yes\n"
        )
        argv = sshd.ssh_argv("none", "echo", "in")
        argv[argv.index("/dev/null")] = str(config)
        # The command line's ProxyCommand would win over the config's: drop it.
        at = argv.index("ProxyCommand=none")
        del argv[at - 1 : at + 1]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "in\n"
        return r.stderr

    assert "opened the tunnel" in login_through(squid.port)
    assert "opened the tunnel" not in login_through(peers.free_port())
