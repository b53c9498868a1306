"""One way to write host:port (ncfd.render.host_port): an IPv6 literal in brackets, wherever a
message, a URL, a -v line or a prompt shows one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ncfd.fdrecv import _addr
from ncfd.proxies import Proxy
from ncfd.render import host_port
from ncfd.route.pac_engine import Entry, browser_url

PACKAGE = Path(__file__).resolve().parents[2] / "ncfd"


@pytest.mark.parametrize(
    ("host", "port", "shown"),
    [("proxy.corp", 3128, "proxy.corp:3128"), ("192.0.2.1", 80, "192.0.2.1:80"), ("::1", 22, "[::1]:22"),
     ("fe80::1%eth0", 22, "[fe80::1%eth0]:22"), ("pac.corp", None, "pac.corp"), ("2001:db8::1", None, "[2001:db8::1]")],
)  # fmt: skip
def test_an_ipv6_literal_is_bracketed_and_nothing_else(host: str, port: int | None, shown: str) -> None:
    assert host_port(host, port) == shown


def test_each_place_that_shows_a_host_and_port_shows_it_so() -> None:
    assert str(Proxy("2001:db8::1", 3128, "connect")) == "HTTP proxy [2001:db8::1]:3128"
    assert str(Proxy("proxy.corp", 1080, "5")) == "SOCKS5 proxy proxy.corp:1080"
    assert str(Entry("proxy", "::1", 8080)) == "PROXY [::1]:8080"
    assert browser_url("::1", 443) == "https://[::1]/"
    assert browser_url("::1", 22) == "https://[::1]:22/"
    assert browser_url("host.corp", 22) == "https://host.corp:22/"
    assert _addr(("::1", 22, 0, 0)) == "[::1]:22"


def test_no_module_brackets_a_host_itself() -> None:
    """host_port is the one place: an f-string opening with "[{" elsewhere is a second one."""
    found = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                   if re.search(r"""f["']\[\{""", path.read_text()))  # fmt: skip
    assert found == ["render.py"]
