"""--check and ncfd.check(): the report a user reads when ssh through the proxy fails, against the
real peers (squid, tinyproxy, dante, a PAC from nginx, sshd's banner, a Kerberos proxy) and scripted
proxies in the way: one that answers the tunnel with a TLS handshake, one with an HTML page."""

from __future__ import annotations

import pytest

import ncfd
from ncfd.diagnose import classify, first_bytes_text
from tests.support import peers
from tests.support.check import SERVER_HELLO, TUNNEL_OK
from tests.support.fakeservers import FakeServer, http_proxy

# --- the API --------------------------------------------------------------------------------------


def test_the_api_reports_a_tls_inspecting_proxy_and_raises_only_usage_errors() -> None:
    with FakeServer(http_proxy(TUNNEL_OK + SERVER_HELLO)) as proxy:
        report = ncfd.check("ssh.example", 22, proxy=f"http://127.0.0.1:{proxy.port}", timeout=10)
    assert (report["ok"], report["exit_code"], report["first_bytes"]["kind"]) == (False, 5, "tls")
    failed = ncfd.check("ssh.example", 22, proxy=f"http://127.0.0.1:{peers.free_port()}", timeout=10)
    assert (failed["ok"], failed["exit_code"], failed["first_bytes"]) == (False, 4, None)
    assert failed["error"].startswith("connect to HTTP proxy 127.0.0.1 port ")
    with pytest.raises(ncfd.UsageError, match="proxy and pac exclude each other"):
        ncfd.check("h", 22, proxy="http://p:3128", pac="http://pac/proxy.pac")


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
