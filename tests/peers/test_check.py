"""--check and ncfd.check(): the report a user reads when ssh through the proxy fails, against the
real peers (squid, tinyproxy, dante, a PAC from nginx, sshd's banner, a Kerberos proxy) and scripted
proxies in the way: one that answers the tunnel with a TLS handshake, one with an HTML page."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ncfd
from tests.support import peers
from tests.support.check import PROXY_VARIABLES, check


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A cache of ncfd's own, no proxy or password from the test runner's environment."""
    base = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    return {**base, "XDG_CACHE_HOME": str(tmp_path / "cache")}


def step(steps: list[str], start: str) -> str:
    found = [s for s in steps if s.startswith(start)]
    assert found, f"no step starting {start!r} in:\n" + "\n".join(steps)
    return found[0]


# --- the real peers -------------------------------------------------------------------------------


def test_through_squid_to_sshd_reports_each_step_and_the_ssh_banner(
    squid: peers.Proxy, sshd: peers.Sshd, env: dict[str, str]
) -> None:
    code, steps, stderr = check(["-X", "connect", "-x", squid.address, "127.0.0.1", str(sshd.port)], env)
    assert (code, stderr) == (0, ""), steps
    assert steps[0] == f"checking 127.0.0.1 port {sshd.port} as -F would, within 60s"
    assert steps[1] == f"route: from -x: HTTP proxy {squid.address}"
    assert f"connected to HTTP proxy {squid.address}" in steps
    assert f'HTTP proxy {squid.address} answered "HTTP/1.1 200 Connection established"' in steps
    assert f"HTTP proxy {squid.address} opened the tunnel to 127.0.0.1:{sshd.port}" in steps
    assert step(steps, "the far end sent ").startswith('the far end sent an SSH banner: "SSH-2.0-OpenSSH_')
    assert steps[-1].startswith("verdict: ok: the tunnel works and the far end is an SSH server")


def test_through_a_pac_from_nginx_names_the_pac_its_answer_and_the_dead_route_skipped(
    web: peers.WebServer, tinyproxy: peers.Proxy, sshd: peers.Sshd, env: dict[str, str]
) -> None:
    dead = peers.free_port()  # nothing listens there: refused
    answer = f"PROXY 127.0.0.1:{dead}; PROXY {tinyproxy.address}"
    pac = web.root / f"check-{os.getpid()}.pac"
    pac.write_text(f'function FindProxyForURL(url, host) {{ return "{answer}"; }}')
    pac.chmod(0o644)
    url = web.url(pac.name)
    code, steps, stderr = check(["--proxy-pac", url, "127.0.0.1", str(sshd.port)], env)
    assert (code, stderr) == (0, ""), steps
    assert f'route: from PAC {url}, which answered "{answer}": 1. HTTP proxy 127.0.0.1:{dead}, 2. HTTP proxy ' \
           f"{tinyproxy.address}" in steps  # fmt: skip
    assert step(steps, f"PAC {url}: fetched ")
    assert step(steps, f"HTTP proxy 127.0.0.1:{dead} failed: connect to HTTP proxy 127.0.0.1 port {dead} failed: "
                       "Connection refused; trying the next route")  # fmt: skip
    assert f"HTTP proxy {tinyproxy.address} opened the tunnel to 127.0.0.1:{sshd.port}" in steps
    assert step(steps, "the far end sent an SSH banner")
    assert steps[-1].startswith("verdict: ok")


def test_through_dante_with_socks5(dante: peers.Proxy, sshd: peers.Sshd, env: dict[str, str]) -> None:
    code, steps, _ = check(["-x", f"socks5h://{dante.address}", "127.0.0.1", str(sshd.port)], env)
    assert code == 0, steps
    assert f"SOCKS5 proxy {dante.address} opened the tunnel to 127.0.0.1:{sshd.port}" in steps
    assert steps[-1].startswith("verdict: ok")


def test_through_an_https_proxy_the_banner_is_read_from_the_tls_session(
    https_proxy: peers.TlsProxy, sshd: peers.Sshd, env: dict[str, str]
) -> None:
    args = ["--proxy-cacert", str(https_proxy.cafile), "-x", f"https://{https_proxy.address}"]
    code, steps, _ = check([*args, "127.0.0.1", str(sshd.port)], env)
    assert code == 0, steps
    assert step(steps, f"HTTPS proxy {https_proxy.address}: TLSv1.")
    assert step(steps, "the far end sent an SSH banner")


def test_the_user_a_socks5_proxy_is_asked_with_is_named(
    microsocks_auth: peers.ProxyFactory, sshd: peers.Sshd, env: dict[str, str]
) -> None:
    proxy = microsocks_auth("alice", "socks-secret")
    code, steps, _ = check(["-P", "alice", "-x", proxy.address, "127.0.0.1", str(sshd.port)],
                           {**env, "NCFD_PROXY_PASSWORD": "socks-secret"})  # fmt: skip
    assert code == 0, steps
    assert f"asking SOCKS5 proxy {proxy.address} for the tunnel to 127.0.0.1:{sshd.port} with username/password alice" \
           in steps  # fmt: skip
    assert "socks-secret" not in "\n".join(steps)


def test_a_wrong_password_at_squid_is_the_verdict_with_exit_6_and_no_secret(
    squid_auth: peers.ProxyFactory, sshd: peers.Sshd, env: dict[str, str]
) -> None:
    proxy = squid_auth("alice", "right-secret")
    wrong = "wr0ng-pass"
    code, steps, stderr = check(["-x", f"http://alice@{proxy.address}", "127.0.0.1", str(sshd.port)],
                                {**env, "NCFD_PROXY_PASSWORD": wrong})  # fmt: skip
    assert (code, stderr) == (6, ""), steps
    assert f"answering HTTP proxy {proxy.address}'s basic challenge as alice" in steps
    assert f"the password for alice at HTTP proxy {proxy.address}: from NCFD_PROXY_PASSWORD" in steps
    assert f"sending CONNECT 127.0.0.1:{sshd.port} with basic credentials" in steps
    failed = f"proxy authentication failed for alice at HTTP proxy {proxy.address}"
    assert steps[-1] == f"verdict: no tunnel (exit 6): {failed}"
    report = "\n".join(steps)
    assert wrong not in report and base64.b64encode(f"alice:{wrong}".encode()).decode() not in report


def test_the_netrc_entry_used_is_named(
    squid_auth: peers.ProxyFactory, sshd: peers.Sshd, env: dict[str, str], tmp_path: Path
) -> None:
    proxy = squid_auth("alice", "right-secret")
    netrc = tmp_path / "proxies.netrc"
    netrc.write_text("machine 127.0.0.1 login alice password right-secret\n")
    netrc.chmod(0o600)
    code, steps, _ = check(["--proxy-netrc", str(netrc), "-X", "connect", "-x", proxy.address, "127.0.0.1",
                            str(sshd.port)], env)  # fmt: skip
    assert code == 0, steps
    whose = f"the password for alice at HTTP proxy {proxy.address}"
    assert f"{whose}: from --proxy-netrc file {netrc}, machine 127.0.0.1" in steps
    assert "right-secret" not in "\n".join(steps)


def test_the_kerberos_principal_used_is_named(
    kdc: peers.Kdc, squid_kerberos: peers.Proxy, sshd: peers.Sshd, env: dict[str, str], tmp_path: Path
) -> None:
    krb_env = {**env, **kdc.env(ccache=tmp_path / "ccache")}
    kdc.kinit(krb_env)
    proxy = f"{peers.PROXY_NAME}:{squid_kerberos.port}"
    code, steps, _ = check(["-X", "connect", "-x", proxy, "127.0.0.1", str(sshd.port)], krb_env)
    assert code == 0, steps
    assert step(steps, f"answering HTTP proxy {proxy}'s negotiate challenge with Kerberos for HTTP@{peers.PROXY_NAME}: "
                       f"alice@{peers.REALM}, credential cache {krb_env['KRB5CCNAME']}")  # fmt: skip
    assert steps[-1].startswith("verdict: ok")


# --- proxies in the way ---------------------------------------------------------------------------


def test_the_handoff_does_not_import_the_check_module(sshd: peers.Sshd) -> None:
    """-F and relay mode pay nothing for --check: its module is imported only for it."""
    code = (f"import sys, ncfd.cli; rc = ncfd.cli.main(['-z', '127.0.0.1', '{sshd.port}']); "
            "print(rc, 'ncfd.diagnose' in sys.modules, 'ncfd.connection' in sys.modules)")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)  # fmt: skip
    assert r.stdout == "0 False True\n", r.stderr


# --- the API --------------------------------------------------------------------------------------


def test_the_api_returns_the_same_report_as_a_dict(squid: peers.Proxy, sshd: peers.Sshd) -> None:
    report = ncfd.check("127.0.0.1", sshd.port, proxy=f"http://{squid.address}")
    assert report["ok"] is True and report["exit_code"] == 0 and report["error"] is None
    assert report["route"] == {"source": "-x", "answer": None, "routes": [f"HTTP proxy {squid.address}"]}
    assert report["first_bytes"]["kind"] == "ssh"
    assert report["first_bytes"]["text"].startswith('an SSH banner: "SSH-2.0-OpenSSH_')
    steps = report["steps"]
    assert all(set(s) == {"time", "what"} and isinstance(s["time"], float) for s in steps)
    assert f"HTTP proxy {squid.address} opened the tunnel to 127.0.0.1:{sshd.port}" in [s["what"] for s in steps]
    assert steps[-1]["what"] == f"verdict: {report['verdict']}"


def test_the_api_takes_the_password_as_connect_does_and_never_shows_it(squid_auth: peers.ProxyFactory) -> None:
    proxy = squid_auth("alice", "right-secret")
    asked: list[int] = []

    def password() -> str:
        asked.append(1)
        return "right-secret"

    report = ncfd.check("127.0.0.1", 1, proxy=f"http://{proxy.address}", user="alice", password=password)
    assert len(asked) == 1
    assert "right-secret" not in repr(report)
    assert f"answering HTTP proxy {proxy.address}'s basic challenge as alice" in [s["what"] for s in report["steps"]]
