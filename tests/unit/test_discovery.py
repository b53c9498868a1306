"""--proxy-auto: the environment, GNOME's settings (the real gsettings, keyfile backend), KDE's
kioslaverc, macOS's scutil (its output only: no macOS here), WPAD by DHCP (the real NetworkManager
in a network of its own, tests/networkmanager.py; and nmcli's output, recorded from it), and WPAD
through the real resolver (the names .ci/run maps in /etc/hosts, nginx on port 80 of their
addresses), with the real ssh logging in through what was found, and what nothing found costs."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ncfd.proxies import Proxy
from ncfd.route import discovery
from tests.support import peers
from tests.support.discovery import NMCLI

# --- each source, by itself -------------------------------------------------------------------------


def test_kde_manual_settings() -> None:
    text = "[General]\nx=1\n[Proxy Settings]\nProxyType=1\nhttpsProxy=http://proxy.kde 8080\n"
    text += "NoProxyFor=.local,10.0.0.0/8\n"
    assert proxies(discovery.kde_settings(text, "ssh.example", {})) == ["HTTP proxy proxy.kde:8080"]
    assert discovery.kde_settings(text, "printer.local", {}) == []
    by_env = "[Proxy Settings]\nProxyType=4\nhttpsProxy=CORP_PROXY\n"
    assert proxies(discovery.kde_settings(by_env, "h", {"CORP_PROXY": "http://env.kde:3128"})) == [
        "HTTP proxy env.kde:3128"
    ]
    assert isinstance(discovery.kde_settings("[Proxy Settings]\nProxyType=3\n", "h", {}), discovery.Wpad)
    assert discovery.kde_settings("[Proxy Settings]\nProxyType=0\n", "h", {}) is None


@pytest.mark.parametrize("value", ["http://[::1]:3128", "http://[::1] 3128", "http://::1 3128", "[::1]:3128"])
def test_kde_ipv6_proxy(value: str) -> None:
    text = f"[Proxy Settings]\nProxyType=1\nhttpsProxy={value}\n"
    assert proxies(discovery.kde_settings(text, "ssh.example", {})) == ["HTTP proxy [::1]:3128"]


@pytest.mark.parametrize("value", ["http://[::1", "http://[::1]x:3128", "http://[::1]"])
def test_kde_proxy_that_is_not_an_address_is_not_used(value: str) -> None:
    assert discovery.kde_settings(f"[Proxy Settings]\nProxyType=1\nhttpsProxy={value}\n", "h", {}) is None


SCUTIL = """<dictionary> {
  ExceptionsList : <array> {
    0 : *.local
    1 : 169.254/16
  }
  FTPPassive : 1
  HTTPEnable : 0
  HTTPSEnable : 1
  HTTPSPort : 3128
  HTTPSProxy : proxy.mac.example
  ProxyAutoConfigEnable : 0
  SOCKSEnable : 0
}
"""


def test_macos_scutil_output() -> None:
    assert proxies(discovery.macos_settings(SCUTIL, "ssh.example")) == ["HTTP proxy proxy.mac.example:3128"]
    assert discovery.macos_settings(SCUTIL, "printer.local") == []
    pac = SCUTIL.replace(
        "ProxyAutoConfigEnable : 0", "ProxyAutoConfigEnable : 1\n  ProxyAutoConfigURLString : http://p/x.pac"
    )
    found = discovery.macos_settings(pac, "ssh.example")
    assert isinstance(found, discovery.PacLocation) and found.location == "http://p/x.pac"
    wpad = "<dictionary> {\n  ProxyAutoDiscoveryEnable : 1\n}\n"
    assert isinstance(discovery.macos_settings(wpad, "h"), discovery.Wpad)


def proxies(found: object) -> list[str]:
    assert isinstance(found, list)
    return [str(p) for p in found if isinstance(p, Proxy)]


def test_wpad_names_devolve_down_to_the_registrable_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALDOMAIN", "a.b.corp.example other.example")
    assert discovery.wpad_candidates() == [
        "http://wpad/wpad.dat",
        "http://wpad.a.b.corp.example/wpad.dat",
        "http://wpad.b.corp.example/wpad.dat",
        "http://wpad.corp.example/wpad.dat",
    ]  # never wpad.example: an unknown top-level name is a public suffix of its own
    monkeypatch.setenv("LOCALDOMAIN", "a.b.Example.Co.UK.")
    assert discovery.wpad_candidates() == [
        "http://wpad/wpad.dat",
        "http://wpad.a.b.example.co.uk/wpad.dat",
        "http://wpad.b.example.co.uk/wpad.dat",
        "http://wpad.example.co.uk/wpad.dat",
    ]  # never wpad.co.uk, a name anyone may register
    monkeypatch.setenv("LOCALDOMAIN", "host.shop.kawasaki.jp")  # *.kawasaki.jp: shop.kawasaki.jp is a suffix
    assert discovery.wpad_candidates()[1:] == ["http://wpad.host.shop.kawasaki.jp/wpad.dat"]
    monkeypatch.setenv("LOCALDOMAIN", "home.alice.dyndns.org")  # a private entry counts as public
    assert discovery.wpad_candidates()[1:] == [
        "http://wpad.home.alice.dyndns.org/wpad.dat",
        "http://wpad.alice.dyndns.org/wpad.dat",
    ]
    for domain in ("example", "co.uk", "dyndns.org", "a..b"):
        monkeypatch.setenv("LOCALDOMAIN", domain)
        assert discovery.wpad_candidates() == ["http://wpad/wpad.dat"], domain


# --- WPAD by DHCP ------------------------------------------------------------------------------------


def test_nmcli_output() -> None:
    assert discovery.nmcli_wpad(NMCLI) == {"ncfdveth0": "http://10.213.0.1/wpad.dat"}
    wlan = "GENERAL.DEVICE:wlan0\nDHCP4.OPTION[9]:wpad = http://p/w.dat \n"
    other = NMCLI.replace("GENERAL.DEVICE:ncfdveth1\n", wlan)
    assert discovery.nmcli_wpad(other) == {"ncfdveth0": "http://10.213.0.1/wpad.dat", "wlan0": "http://p/w.dat"}
    assert discovery.nmcli_wpad(NMCLI.replace("wpad = ", "wpad_x = ")) == {}


# --- WPAD through the resolver -----------------------------------------------------------------------


def test_what_holds_a_port_is_named_as_ss_would() -> None:
    assert peers.port_holder(peers.HOST, peers.free_port()) is None
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))  # a wildcard holds the port on every address
        listener.listen()
        port = listener.getsockname()[1]
        comm = Path("/proc/self/comm").read_text().strip()
        assert peers.port_holder("127.80.80.80", port) == f"{comm} (pid {os.getpid()})"


# --- discovery finds; the route choice fetches -------------------------------------------------------


def test_discovery_fetches_no_pac_and_runs_none() -> None:
    """What ncfd.route.discovery imports, directly or not, reaches neither PAC fetching nor the
    engine, nor the route choice that does both."""
    import ast

    root = Path(discovery.__file__).resolve().parent.parent.parent
    seen, todo = set(), ["ncfd.route.discovery"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = root / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = root / name.replace(".", "/") / "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ncfd"):
                for alias in node.names:
                    inner = f"{node.module}.{alias.name}"
                    exists = (root / (inner.replace(".", "/") + ".py")).exists()
                    todo.append(inner if exists else node.module)
            elif isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names if alias.name.startswith("ncfd")]
    fetching = {"ncfd.route.pac_fetch", "ncfd.route.pac_engine", "ncfd.route.choice", "ncfd.route.wpad"}
    assert "ncfd.route.cache" in seen and not seen & fetching
