"""--check and ncfd.check(): the report a user reads when ssh through the proxy fails, against the
real peers (squid, tinyproxy, dante, a PAC from nginx, sshd's banner, a Kerberos proxy) and scripted
proxies in the way: one that answers the tunnel with a TLS handshake, one with an HTML page."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ncfd
from ncfd.diagnose import classify, first_bytes_text
from tests.support import peers
from tests.support.fakeservers import FakeServer, http_proxy
from tests.support.fdharness import NCFD, run_ncfd

PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
                   "NCFD_PROXY_PASSWORD", "SSH_ASKPASS", "KRB5_CLIENT_KTNAME")  # fmt: skip
STEP = re.compile(r"^ *(\d+\.\d{3})s  (\S.*)$")
TUNNEL_OK = b"HTTP/1.1 200 Connection established\r\n\r\n"
# What a TLS-inspecting proxy starts its side of the handshake with: a handshake record, TLS 1.2,
# carrying a ServerHello (type 2).
SERVER_HELLO = bytes.fromhex("16 03 03 00 4a 02 00 00 46 03 03") + bytes(range(32)) + b"\x00\xc0\x2f\x00"
BLOCK_PAGE = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 93\r\n\r\n"
              b"<!DOCTYPE html><html><head><title>Blocked \x1b[31mby policy</title></head>"
              b"<body>No.</body></html>")  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A cache of ncfd's own, no proxy or password from the test runner's environment."""
    base = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    return {**base, "XDG_CACHE_HOME": str(tmp_path / "cache")}


def check(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, list[str], str]:
    """ncfd --check, with no terminal (setsid: nothing can be prompted for): (exit status, the
    report's steps without their times, stderr), each step checked to be one timed line."""
    r = subprocess.run(["setsid", *NCFD, "--check", *args], capture_output=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)  # fmt: skip
    out = r.stdout.decode()
    lines = out.splitlines()
    assert out.endswith("\n") and lines, (out, r.stderr)
    matches = [STEP.match(line) for line in lines]
    assert all(matches), out
    times = [float(m.group(1)) for m in matches if m]
    assert times == sorted(times), out
    assert lines[-1].split("s  ", 1)[1].startswith("verdict: "), out
    return r.returncode, [m.group(2) for m in matches if m], r.stderr.decode()


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


def test_a_proxy_answering_the_tunnel_with_tls_is_named_as_in_the_way(env: dict[str, str]) -> None:
    with FakeServer(http_proxy(TUNNEL_OK + SERVER_HELLO)) as proxy:
        code, steps, stderr = check(["-X", "connect", "-x", f"127.0.0.1:{proxy.port}", "ssh.example", "22"], env)
    assert (code, stderr) == (5, ""), steps
    assert "the far end sent a TLS handshake record (16 03 03 00 4a 02 00 00 46 03 03 00 01 02 03 04 ...)" in steps
    assert steps[-1].startswith("verdict: FAILED (exit 5): a TLS handshake came through the tunnel instead of the"
                                " server's first words: a TLS-inspecting proxy is in the way, and ssh cannot work"
                                " through it")  # fmt: skip


def test_a_proxy_answering_the_tunnel_with_an_html_page_is_named_escaped(env: dict[str, str]) -> None:
    with FakeServer(http_proxy(TUNNEL_OK + BLOCK_PAGE)) as proxy:
        r = subprocess.run([*NCFD, "--check", "-X", "connect", "-x", f"127.0.0.1:{proxy.port}", "ssh.example", "22"],
                           capture_output=True, timeout=30, env=env, stdin=subprocess.DEVNULL)  # fmt: skip
    assert r.returncode == 5, r.stdout
    assert b"\x1b" not in r.stdout  # the page's escape sequence never reaches the terminal
    out = r.stdout.decode()
    assert 'the far end sent an HTTP answer: "HTTP/1.1 403 Forbidden", page title "Blocked \\x1b[31mby policy"' in out
    assert "verdict: FAILED (exit 5): an HTTP answer came through the tunnel instead of the server's first words" in out


def test_a_far_end_that_stays_silent_is_a_working_tunnel_said_so_within_the_wait(env: dict[str, str]) -> None:
    with FakeServer(http_proxy(TUNNEL_OK)) as proxy:
        start = time.monotonic()
        code, steps, _ = check(["-w", "2", "-X", "connect", "-x", f"127.0.0.1:{proxy.port}", "h.example", "22"], env)
        elapsed = time.monotonic() - start
    assert code == 0, steps
    assert 1.9 < elapsed < 10
    assert "tunnel up; reading what the far end sends first (up to 2s)" in steps
    assert "the far end sent nothing" in steps
    assert steps[-1].startswith("verdict: ok: the tunnel works; the far end sent nothing within 2s: a server that")


def test_a_far_end_that_closes_at_once_fails_with_exit_1(env: dict[str, str]) -> None:
    with FakeServer(http_proxy(TUNNEL_OK, then_echo=False)) as proxy:
        code, steps, _ = check(["-X", "connect", "-x", f"127.0.0.1:{proxy.port}", "h.example", "22"], env)
    assert code == 1, steps
    assert "the far end closed the tunnel" in steps
    assert steps[-1].startswith("verdict: FAILED (exit 1): the far end closed the tunnel without a word")


def test_the_usual_failure_of_the_tunnel_is_the_verdict_with_its_exit_status(env: dict[str, str]) -> None:
    port = peers.free_port()
    code, steps, stderr = check(["-X", "connect", "-x", f"127.0.0.1:{port}", "h.example", "22"], env)
    assert (code, stderr) == (4, "")
    refused = f"connect to HTTP proxy 127.0.0.1 port {port} failed: Connection refused"
    assert steps[-1] == f"verdict: no tunnel (exit 4): {refused}"


@pytest.mark.parametrize("other", ["-F", "--show-route"])
def test_check_with_f_or_show_route_is_a_usage_error(other: str) -> None:
    r = run_ncfd(["--check", other, "-x", "127.0.0.1:1", "h", "22"])
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.decode() == (f"ncfd: --check goes the way -F would and prints a report on stdout: not with {other}"
                                 " (give --check the ProxyCommand's other options)\n")  # fmt: skip


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


def test_the_api_reports_a_tls_inspecting_proxy_and_raises_only_usage_errors() -> None:
    with FakeServer(http_proxy(TUNNEL_OK + SERVER_HELLO)) as proxy:
        report = ncfd.check("ssh.example", 22, proxy=f"http://127.0.0.1:{proxy.port}", timeout=10)
    assert (report["ok"], report["exit_code"], report["first_bytes"]["kind"]) == (False, 5, "tls")
    failed = ncfd.check("ssh.example", 22, proxy=f"http://127.0.0.1:{peers.free_port()}", timeout=10)
    assert (failed["ok"], failed["exit_code"], failed["first_bytes"]) == (False, 4, None)
    assert failed["error"].startswith("connect to HTTP proxy 127.0.0.1 port ")
    with pytest.raises(ncfd.UsageError, match="proxy and pac exclude each other"):
        ncfd.check("h", 22, proxy="http://p:3128", pac="http://pac/proxy.pac")


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


# --- what the first bytes are ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "final", "kind"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n", False, "ssh"),
        (b"SSH-2.0-Open", False, None),  # the line is not complete yet
        (b"SSH-2.0-Open", True, "ssh"),
        (b"Welcome to the lab\r\nSSH-2.0-x\r\n", False, "ssh"),  # RFC 4253: lines before the version
        (b"Welcome to the lab\r\n", False, None),
        (b"Welcome to the lab\r\n", True, "other"),
        (b"\x16", False, None),
        (b"\x16\x03\x03\x00\x4a\x02", False, "tls"),
        (b"\x15\x03\x01\x00\x02\x02\x28", False, "tls"),  # an alert
        (b"HTTP/1.1 403 Forbidden\r\n", False, "html"),
        (b"HTTP/1.1 403 Forbidden\r\n\r\nSSH-2.0 is not allowed here\r\n", False, "html"),  # not a server's
        (b"<html><body>blocked", False, "html"),
        (b"\x00\x01\xff", False, "other"),
    ],
)
def test_classify(data: bytes, final: bool, kind: str | None) -> None:
    assert classify(data, final) == kind


def test_first_bytes_are_shown_escaped() -> None:
    assert first_bytes_text("ssh", b"SSH-2.0-evil\x1b]0;x\x07\r\n") == 'an SSH banner: "SSH-2.0-evil\\x1b]0;x\\x07"'
    hexed = "32 32 30 20 6d 61 69 6c 20 9b 20 72 65 61 64 79 0d 0a (binary)"
    assert first_bytes_text("other", b"220 mail \x9b ready\r\n") == hexed
    assert first_bytes_text("other", b"220 mail\x1b ready\r\nmore\r\n") == '"220 mail\\x1b ready" ...'
