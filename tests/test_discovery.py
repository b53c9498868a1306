"""--proxy-auto: the environment, GNOME's settings (the real gsettings, keyfile backend), KDE's
kioslaverc, macOS's scutil (its output only: no macOS here), WPAD by DHCP (the real NetworkManager
in a network of its own, tests/networkmanager.py; and nmcli's output, recorded from it), and WPAD
through the real resolver (the names .ci/run maps in /etc/hosts, nginx on port 80 of their
addresses), with the real ssh logging in through what was found, and what nothing found costs."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ncfd import cache, discovery
from ncfd.proxies import Proxy
from tests.support import networkmanager, peers
from tests.support.fakeservers import FakeServer, silent
from tests.support.fdharness import NCFD, ncfd_command, run_fdpass, run_ncfd

PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")
# .ci/run maps these in /etc/hosts: the bare name WPAD asks for first, and a devolved one.
WPAD_HOSTS = {"wpad": "127.80.80.80", "wpad.corp.ncfd.test": "127.80.80.81"}
DOMAIN = "dept.corp.ncfd.test"  # this host's domain, as LOCALDOMAIN says, in these tests


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A desktop with nothing set: no proxy variables, gsettings on a keyfile of its own, no
    kioslaverc, a cache of its own, and a domain whose wpad names are the tests' own."""
    config = tmp_path / "config"
    config.mkdir()
    base = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    return {**base, "XDG_CONFIG_HOME": str(config), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "GSETTINGS_BACKEND": "keyfile", "LOCALDOMAIN": DOMAIN}  # fmt: skip


def show_route(env: dict[str, str], *args: str, host: str = "ssh.example", port: int = 22) -> list[str]:
    r = run_ncfd(["--show-route", "-v", "--proxy-auto", *args, host, str(port)], env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().splitlines()


def gsettings(env: dict[str, str], schema: str, key: str, value: str) -> None:
    peers.require("gsettings")
    subprocess.run(["gsettings", "set", schema, key, value], env=env, check=True, capture_output=True)


def pac_text(answer: str) -> str:
    return f'function FindProxyForURL(url, host) {{ return "{answer}"; }}'


# --- each source, by itself -------------------------------------------------------------------------


def test_the_environment_comes_first(env: dict[str, str], squid: peers.Proxy) -> None:
    env["https_proxy"] = f"http://{squid.address}"
    gsettings(env, "org.gnome.system.proxy", "mode", "'auto'")  # would say: discover
    assert show_route(env)[1:] == ["source: the environment", f"route 1: HTTP proxy {squid.address}"]
    env["no_proxy"] = "ssh.example"
    assert show_route(env)[1:] == ["source: the environment", "route 1: direct"]


def test_ssh_logs_in_through_what_the_environment_names(
    env: dict[str, str], sshd: peers.Sshd, squid: peers.Proxy
) -> None:
    env["https_proxy"] = f"http://{squid.address}"
    argv = sshd.ssh_argv(f"{ncfd_command()} -F --proxy-auto %h %p", "echo", "in")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr


def test_gnome_manual_proxy_and_its_ignore_hosts(env: dict[str, str]) -> None:
    gsettings(env, "org.gnome.system.proxy", "mode", "'manual'")
    gsettings(env, "org.gnome.system.proxy.https", "host", "'proxy.corp.example'")
    gsettings(env, "org.gnome.system.proxy.https", "port", "8443")
    gsettings(env, "org.gnome.system.proxy", "ignore-hosts", "['localhost', '*.internal.example', '10.0.0.0/8']")
    source = "source: GNOME's proxy settings (gsettings)"
    assert show_route(env)[1:] == [source, "route 1: HTTP proxy proxy.corp.example:8443"]
    assert show_route(env, host="git.internal.example")[1:] == [source, "route 1: direct"]
    assert show_route(env, host="10.1.2.3")[1:] == [source, "route 1: direct"]


def test_gnome_socks_when_no_secure_proxy_is_set(env: dict[str, str]) -> None:
    gsettings(env, "org.gnome.system.proxy", "mode", "'manual'")
    gsettings(env, "org.gnome.system.proxy.socks", "host", "'socks.corp.example'")
    gsettings(env, "org.gnome.system.proxy.socks", "port", "1080")
    assert show_route(env)[2:] == ["route 1: SOCKS5 proxy socks.corp.example:1080"]


def test_gnome_auto_with_a_pac_url(env: dict[str, str], web: peers.WebServer) -> None:
    (web.root / "gnome.pac").write_text(pac_text("PROXY from.gnome.pac:3128"))
    (web.root / "gnome.pac").chmod(0o644)
    gsettings(env, "org.gnome.system.proxy", "mode", "'auto'")
    gsettings(env, "org.gnome.system.proxy", "autoconfig-url", f"'{web.url('gnome.pac')}'")
    lines = show_route(env)
    assert lines[1] == f"source: PAC {web.url('gnome.pac')} from GNOME's proxy settings (gsettings)"
    assert lines[-1] == "route 1: HTTP proxy from.gnome.pac:3128"


def test_kde_pac_url(env: dict[str, str], web: peers.WebServer) -> None:
    (web.root / "kde.pac").write_text(pac_text("SOCKS5 from.kde.pac:1080"))
    (web.root / "kde.pac").chmod(0o644)
    (Path(env["XDG_CONFIG_HOME"]) / "kioslaverc").write_text(
        f"[Proxy Settings]\nProxyType=2\nProxy Config Script={web.url('kde.pac')}\n"
    )
    lines = show_route(env)
    assert lines[1] == f"source: PAC {web.url('kde.pac')} from KDE's proxy settings (kioslaverc)"
    assert lines[-1] == "route 1: SOCKS5 proxy from.kde.pac:1080"


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


def test_a_pac_url_with_a_password_from_the_desktop_is_refused_and_never_shown(
    env: dict[str, str], web: peers.WebServer
) -> None:
    url = web.url("kde-secret.pac").replace("http://", "http://alice:s3cret@", 1)
    shown = web.url("kde-secret.pac").replace("http://", "http://alice:***@", 1)
    (Path(env["XDG_CONFIG_HOME"]) / "kioslaverc").write_text(
        f"[Proxy Settings]\nProxyType=2\nProxy Config Script={url}\n"
    )
    r = run_ncfd(["--show-route", "-v", "--proxy-auto", "ssh.example", "22"], env=env)
    assert (r.returncode, r.stdout) == (2, b"")
    lines = r.stderr.decode().splitlines()
    assert f"ncfd: --proxy-auto: KDE's proxy settings (kioslaverc) name the PAC {shown}" in lines
    assert lines[-1] == (f"ncfd: PAC {shown}: ncfd sends no user or password to a PAC server (an @ in a path is written"
                         " %40); fetch the file with them yourself and give ncfd its path")  # fmt: skip
    assert b"s3cret" not in r.stderr


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


def hanging(env: dict[str, str], tmp_path: Path, program: str) -> None:
    """program, first on env's PATH, never answers (a session bus that hangs)."""
    folder = tmp_path / "hanging"
    folder.mkdir(exist_ok=True)
    (folder / program).write_text("#!/bin/sh\nexec sleep 60\n")
    (folder / program).chmod(0o755)
    env["PATH"] = f"{folder}:{env['PATH']}"


@pytest.mark.parametrize(
    ("program", "what"),
    [
        ("gsettings", "the GNOME proxy settings (gsettings)"),
        ("nmcli", "the WPAD option NetworkManager received by DHCP (nmcli)"),
    ],
)
def test_a_settings_program_that_hangs_is_bounded_by_w_and_named(
    env: dict[str, str], tmp_path: Path, program: str, what: str
) -> None:
    hanging(env, tmp_path, program)
    r = run_ncfd(["-w", "1", "--proxy-auto", "127.0.0.1", "9"], env=env)
    assert (r.returncode, r.stderr.decode()) == (7, f"ncfd: timed out after 1s reading {what}\n")


def test_scutil_is_macos_s_alone(env: dict[str, str], tmp_path: Path) -> None:
    """An scutil on PATH here is not macOS's: it is not run (it would hang), and -v names no macOS."""
    hanging(env, tmp_path, "scutil")
    r = run_ncfd(["--show-route", "-v", "-w", "5", "--proxy-auto", "ssh.example", "22"], env=env)
    assert r.returncode == 0, r.stderr
    assert "macOS" not in r.stderr.decode() and "scutil" not in r.stderr.decode()


def test_a_settings_program_that_hangs_is_given_up_on_within_a_longer_w(env: dict[str, str], tmp_path: Path) -> None:
    hanging(env, tmp_path, "gsettings")
    r = run_ncfd(["--show-route", "-v", "-w", "20", "--proxy-auto", "ssh.example", "22"], env=env)
    assert r.returncode == 0, r.stderr
    assert "ncfd: --proxy-auto: nothing in GNOME's proxy settings (gsettings)\n" in r.stderr.decode()


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


@pytest.fixture(scope="module")
def dhcp_network() -> Iterator[networkmanager.Network]:
    with networkmanager.network() as network:
        yield network


def test_wpad_by_dhcp_as_the_real_networkmanager_received_it(
    env: dict[str, str], dhcp_network: networkmanager.Network
) -> None:
    (dhcp_network.www / "wpad.dat").write_text(pac_text("PROXY from.dhcp.pac:3128"))
    r = dhcp_network.run([*NCFD, "--show-route", "-v", "--proxy-auto", "ssh.example", "22"], env)
    assert r.returncode == 0, (r.stderr, dhcp_network.logs())
    url, device = networkmanager.WPAD_URL, networkmanager.DEVICE
    assert r.stdout.decode().splitlines()[1:] == [
        f"source: WPAD {url}",
        "PAC answer: PROXY from.dhcp.pac:3128",
        "route 1: HTTP proxy from.dhcp.pac:3128",
    ]
    stderr = r.stderr.decode().splitlines()
    assert f"ncfd: --proxy-auto: {discovery.DHCP_WPAD} on {device} names the PAC {url}" in stderr
    assert f"ncfd: --proxy-auto: WPAD found {url} by DHCP on {device}" in stderr
    assert "wpad/wpad.dat" not in r.stderr.decode()  # DNS is not asked
    # The desktop saying "discover" means WPAD, DHCP's first.
    gsettings(env, "org.gnome.system.proxy", "mode", "'auto'")
    r = dhcp_network.run([*NCFD, "--show-route", "-v", "--proxy-auto", "ssh.example", "22"], env)
    assert r.returncode == 0, (r.stderr, dhcp_network.logs())
    assert r.stdout.decode().splitlines()[1] == f"source: WPAD {url}"
    assert "ncfd: --proxy-auto: GNOME's proxy settings (gsettings) say to discover the proxy\n" in r.stderr.decode()


# What `nmcli --terse --fields GENERAL.DEVICE,DHCP4 device show` printed on the network above.
NMCLI = """GENERAL.DEVICE:ncfdveth0
DHCP4.OPTION[1]:broadcast_address = 10.213.0.255
DHCP4.OPTION[2]:dhcp_client_identifier = 01:d6:d3:63:bb:78:28
DHCP4.OPTION[3]:dhcp_lease_time = 3600
DHCP4.OPTION[4]:dhcp_server_identifier = 10.213.0.1
DHCP4.OPTION[7]:ip_address = 10.213.0.57
DHCP4.OPTION[25]:requested_wpad = 1
DHCP4.OPTION[26]:routers = 10.213.0.1
DHCP4.OPTION[27]:subnet_mask = 255.255.255.0
DHCP4.OPTION[28]:wpad = http://10.213.0.1/wpad.dat

GENERAL.DEVICE:ncfdveth1

GENERAL.DEVICE:lo
"""


def test_nmcli_output() -> None:
    assert discovery.nmcli_wpad(NMCLI) == {"ncfdveth0": "http://10.213.0.1/wpad.dat"}
    wlan = "GENERAL.DEVICE:wlan0\nDHCP4.OPTION[9]:wpad = http://p/w.dat \n"
    other = NMCLI.replace("GENERAL.DEVICE:ncfdveth1\n", wlan)
    assert discovery.nmcli_wpad(other) == {"ncfdveth0": "http://10.213.0.1/wpad.dat", "wlan0": "http://p/w.dat"}
    assert discovery.nmcli_wpad(NMCLI.replace("wpad = ", "wpad_x = ")) == {}


def fake_nmcli(env: dict[str, str], tmp_path: Path, device: str, wpad: str) -> None:
    """An nmcli first on env's PATH, printing what NetworkManager would with wpad on device."""
    folder = tmp_path / "nmcli"
    folder.mkdir()
    listing = NMCLI.replace("ncfdveth0", device).replace("http://10.213.0.1/wpad.dat", wpad)
    (folder / "listing").write_text(listing)
    (folder / "nmcli").write_text(f"#!/bin/sh\nexec cat {folder / 'listing'}\n")
    (folder / "nmcli").chmod(0o755)
    env["PATH"] = f"{folder}:{env['PATH']}"


def default_route_device() -> str:
    devices = discovery.default_route_devices()
    if not devices:
        peers.unavailable("these tests take the device of this host's default route: there is none")
    return devices[0]


def test_a_dhcp_wpad_that_cannot_be_fetched_leaves_it_to_dns(
    env: dict[str, str], tmp_path: Path, web: peers.WebServer
) -> None:
    require_wpad_names()
    device = default_route_device()
    fake_nmcli(env, tmp_path, device, web.url("dhcp-missing.dat"))
    r = run_ncfd(["--show-route", "-v", "--proxy-auto", "ssh.example", "22"], env=env)
    assert r.returncode == 0, r.stderr
    stderr = r.stderr.decode().splitlines()
    shown = web.url("dhcp-missing.dat")
    assert (f'ncfd: --proxy-auto: WPAD {shown} (DHCP, {device}): cannot fetch PAC {shown}: the server answered'
            ' "404 Not Found"') in stderr  # fmt: skip
    assert any(line.startswith("ncfd: --proxy-auto: WPAD http://wpad/wpad.dat: ") for line in stderr), stderr


@pytest.mark.parametrize(
    ("wpad", "said"),
    [
        ("http://alice:s3cret@{web}/dhcp.pac", ": ncfd sends no user or password to a PAC server"),
        ("file:///etc/passwd", " is not an http:// or https:// URL: file:///etc/passwd"),
        ("http://{web}/\x1b[2Jdhcp.pac", " is not an http:// or https:// URL: http://{web}/\\x1b[2Jdhcp.pac"),
    ],
)
def test_a_dhcp_wpad_that_is_no_pac_url_is_not_used_nor_its_secret_shown(
    env: dict[str, str], tmp_path: Path, web: peers.WebServer, wpad: str, said: str
) -> None:
    require_wpad_names()
    device = default_route_device()
    fake_nmcli(env, tmp_path, device, wpad.format(web=web.address))
    r = run_ncfd(["--show-route", "-v", "--proxy-auto", "ssh.example", "22"], env=env)
    assert r.returncode == 0, r.stderr
    assert said.format(web=web.address) in r.stderr.decode()
    assert b"s3cret" not in r.stderr + r.stdout and b"\x1b" not in r.stderr + r.stdout
    assert "WPAD found" not in r.stderr.decode()
    assert r.stdout.decode().splitlines()[1] == "source: nothing found (environment, desktop settings, WPAD): direct"


def test_a_dhcp_wpad_on_a_device_without_the_default_route_is_not_used(
    env: dict[str, str], tmp_path: Path, web: peers.WebServer
) -> None:
    require_wpad_names()
    fake_nmcli(env, tmp_path, "ncfdnotrouted0", web.url("dhcp.pac"))
    r = run_ncfd(["--show-route", "-v", "--proxy-auto", "ssh.example", "22"], env=env)
    assert r.returncode == 0, r.stderr
    assert (f"ncfd: --proxy-auto: nothing in {discovery.DHCP_WPAD} (ncfdnotrouted0's: not the default route's"
            " device)") in r.stderr.decode().splitlines()  # fmt: skip


# --- WPAD through the resolver -----------------------------------------------------------------------


def require_wpad_names() -> None:
    for name, address in WPAD_HOSTS.items():
        try:
            found = socket.gethostbyname(name)
        except OSError:
            found = None
        if found != address:
            peers.unavailable(f"{name} must resolve to {address} (/etc/hosts, as .ci/run sets it)")
    if os.geteuid() != 0:
        peers.unavailable("WPAD serves on port 80: these tests run nginx there, as root")
    # A system web server there (the packaged nginx listens on port 80 of every address) would
    # answer in place of the tests' own, or of nobody; scripts/install-peers stops nothing.
    for name, address in WPAD_HOSTS.items():
        if holder := peers.port_holder(address, 80):
            pytest.fail(
                f"port 80 of {address} ({name}) is taken by {holder}: the WPAD tests serve there", pytrace=False
            )


def test_what_holds_a_port_is_named_as_ss_would() -> None:
    assert peers.port_holder(peers.HOST, peers.free_port()) is None
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))  # a wildcard holds the port on every address
        listener.listen()
        port = listener.getsockname()[1]
        comm = Path("/proc/self/comm").read_text().strip()
        assert peers.port_holder("127.80.80.80", port) == f"{comm} (pid {os.getpid()})"


@pytest.fixture
def wpad_server(request: pytest.FixtureRequest) -> Iterator[peers.WebServer]:
    """nginx on port 80 of the address of the WPAD name the test asks for."""
    require_wpad_names()
    name = request.param
    with peers.nginx(WPAD_HOSTS[name], 80, server_name=name) as server:
        yield server


def serve_wpad(server: peers.WebServer, answer: str) -> None:
    path = server.root / "wpad.dat"
    path.write_text(pac_text(answer))
    path.chmod(0o644)


@pytest.mark.parametrize("wpad_server", ["wpad"], indirect=True)
def test_ssh_logs_in_through_the_pac_wpad_finds_past_a_dead_first_proxy(
    env: dict[str, str], wpad_server: peers.WebServer, sshd: peers.Sshd, squid: peers.Proxy
) -> None:
    dead = peers.free_port()
    serve_wpad(wpad_server, f"PROXY 127.0.0.1:{dead}; PROXY {squid.address}")
    argv = sshd.ssh_argv(f"{ncfd_command()} -F -v --proxy-auto %h %p", "echo", "in")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr
    assert "--proxy-auto: WPAD found http://wpad/wpad.dat" in r.stderr
    assert f"HTTP proxy 127.0.0.1:{dead} failed" in r.stderr
    # The next login takes what WPAD found on this network from the cache, and tries the dead last.
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr
    assert "PAC http://wpad/wpad.dat: cached copy" in r.stderr
    assert f"HTTP proxy 127.0.0.1:{dead} was found dead" in r.stderr


@pytest.mark.parametrize("wpad_server", ["wpad.corp.ncfd.test"], indirect=True)
def test_wpad_devolves_the_domain_past_a_bare_name_that_does_not_serve(
    env: dict[str, str], wpad_server: peers.WebServer, banner_target: peers.Target
) -> None:
    # "wpad" resolves (127.80.80.80) but nothing serves there in this test: refused, next name.
    serve_wpad(wpad_server, "DIRECT")
    r = run_fdpass([*NCFD, "-F", "-v", "--proxy-auto", "127.0.0.1", str(banner_target.port)], env=env)
    assert "WPAD http://wpad/wpad.dat: cannot fetch PAC http://wpad/wpad.dat: connect to PAC server wpad" in r.stderr
    assert "WPAD http://wpad.dept.corp.ncfd.test/wpad.dat: cannot fetch" in r.stderr
    assert "--proxy-auto: WPAD found http://wpad.corp.ncfd.test/wpad.dat" in r.stderr
    r.assert_banner_and_echo(banner_target.banner)
    assert [path for path, _, _ in wpad_server.requests()] == ["/wpad.dat"]


def probed(stderr: str) -> list[str]:
    """The WPAD URLs that -v says were asked, in order."""
    import re

    return re.findall(r"^ncfd: --proxy-auto: WPAD (?:found )?(http://\S+/wpad\.dat)", stderr, re.M)


def test_wpad_never_asks_a_name_under_a_public_suffix(env: dict[str, str]) -> None:
    """Whoever registers wpad.co.uk would otherwise choose the proxy of every host in a .co.uk
    domain that finds nothing closer."""
    require_wpad_names()
    env["LOCALDOMAIN"] = "dept.example.co.uk"
    r = run_ncfd(["--show-route", "-v", "--proxy-auto", "ssh.example", "22"], env=env)
    assert r.returncode == 0, r.stderr
    assert probed(r.stderr.decode()) == [
        "http://wpad/wpad.dat",
        "http://wpad.dept.example.co.uk/wpad.dat",
        "http://wpad.example.co.uk/wpad.dat",
    ]


@pytest.mark.parametrize(
    ("portal", "said"),
    [
        ("<!DOCTYPE html>\n<html><body><form action=/login>Log in to Hotel WiFi</form></body></html>\n",
         "an HTML page"),
        ("", "an empty body"),
        ("var loggedIn = false;\n", "a script that defines no FindProxyForURL"),
        ("function FindProxyForURL(url, host) { return 'DIRECT';\n",
         "a script that cannot be loaded: SyntaxError: unexpected token in expression: '' (line 2)"),
    ],
)  # fmt: skip
def test_a_wpad_answer_that_is_not_a_pac_is_nothing_found_there(
    env: dict[str, str], banner_target: peers.Target, monkeypatch: pytest.MonkeyPatch, portal: str, said: str
) -> None:
    """A captive portal answers http://wpad/wpad.dat with its login page: browsers go on to the next
    name, and so does ncfd, to the real PAC at the devolved name; the portal is not remembered."""
    require_wpad_names()
    with (
        peers.nginx(WPAD_HOSTS["wpad"], 80, server_name="wpad") as captive,
        peers.nginx(WPAD_HOSTS["wpad.corp.ncfd.test"], 80, server_name="wpad.corp.ncfd.test") as real,
    ):
        (captive.root / "wpad.dat").write_text(portal)
        (captive.root / "wpad.dat").chmod(0o644)
        serve_wpad(real, "DIRECT")
        argv = [*NCFD, "-F", "-v", "--proxy-auto", "127.0.0.1", str(banner_target.port)]
        r = run_fdpass(argv, env=env)
        r.assert_banner_and_echo(banner_target.banner)
        lines = r.stderr.splitlines()
        assert f"ncfd: --proxy-auto: WPAD http://wpad/wpad.dat answered {said}: not a PAC, nothing found there" in lines
        assert "ncfd: --proxy-auto: WPAD found http://wpad.corp.ncfd.test/wpad.dat" in lines
        assert probed(r.stderr) == [
            "http://wpad/wpad.dat",
            "http://wpad.dept.corp.ncfd.test/wpad.dat",
            "http://wpad.corp.ncfd.test/wpad.dat",
        ]
        monkeypatch.setenv("LOCALDOMAIN", env["LOCALDOMAIN"])
        monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
        assert cache.discovered(discovery.network_tag(), print) == "http://wpad.corp.ncfd.test/wpad.dat"
        # The next run goes to what was found, and never back to the portal.
        r = run_fdpass(argv, env=env)
        r.assert_banner_and_echo(banner_target.banner)
        assert "ncfd: --proxy-auto: WPAD found http://wpad.corp.ncfd.test/wpad.dat" in r.stderr.splitlines()
        assert [path for path, _, _ in captive.requests()] == ["/wpad.dat"]


def test_nothing_found_goes_direct_and_is_remembered(env: dict[str, str], banner_target: peers.Target) -> None:
    require_wpad_names()
    argv = [*NCFD, "-F", "-v", "--proxy-auto", "127.0.0.1", str(banner_target.port)]
    r = run_fdpass(argv, env=env)
    assert "--proxy-auto: no proxy found; connecting directly" in r.stderr
    r.assert_banner_and_echo(banner_target.banner)
    r = run_fdpass(argv, env=env)
    assert "WPAD found nothing on this network lately (remembered); not probing again" in r.stderr
    assert "cannot fetch" not in r.stderr
    r.assert_banner_and_echo(banner_target.banner)


def test_a_wpad_copy_cached_on_another_network_is_not_trusted(
    env: dict[str, str], banner_target: peers.Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The office's wpad.dat, fresh in the cache, seen from a network without a WPAD server."""
    require_wpad_names()
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    office = pac_text("PROXY office.proxy:8080")
    cache.store_pac(cache.PacCopy("http://wpad/wpad.dat", office, time.time(), time.time() + 3600))
    r = run_fdpass([*NCFD, "-F", "-v", "--proxy-auto", "127.0.0.1", str(banner_target.port)], env=env)
    assert "office.proxy" not in r.stderr
    assert "--proxy-auto: no proxy found; connecting directly" in r.stderr
    r.assert_banner_and_echo(banner_target.banner)


@pytest.mark.parametrize("planted", ["by another user", "in another user's directory", "a year ahead"])
def test_what_discovery_remembers_is_trusted_only_as_ncfd_would_have_written_it(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, planted: str
) -> None:
    """A memory that WPAD found nothing on this network, which would skip WPAD; an untrusted
    directory is said once, though every WPAD candidate's cached copy is looked for there."""
    require_wpad_names()
    monkeypatch.setenv("LOCALDOMAIN", env["LOCALDOMAIN"])
    folder = Path(env["XDG_CACHE_HOME"]) / "ncfd"
    folder.mkdir(mode=0o700, parents=True)
    memory = folder / "discovery"
    until = time.time() + (365 * 86400 if planted == "a year ahead" else cache.NOT_FOUND_FOR)
    memory.write_text(f"{discovery.network_tag()} {until!r} none\n")
    memory.chmod(0o600)
    owner = f"it belongs to uid 65534, not to uid {os.geteuid()}"
    warnings = {
        "by another user": [f"ncfd: warning: ignoring the memory of proxy discovery in {folder}: {owner}"],
        "in another user's directory": [f"ncfd: warning: ignoring the cache {folder}: {owner}"],
        "a year ahead": [],
    }[planted]
    if planted == "by another user":
        os.chown(memory, 65534, 65534)
    elif planted == "in another user's directory":
        os.chown(folder, 65534, 65534)
    r = run_ncfd(["--show-route", "-v", "--proxy-auto", "ssh.example", "22"], env=env)
    assert r.returncode == 0, r.stderr
    stderr = r.stderr.decode().splitlines()
    assert "not probing again" not in r.stderr.decode()
    assert any(line.startswith("ncfd: --proxy-auto: WPAD http://wpad/wpad.dat") for line in stderr), stderr
    assert [line for line in stderr if "warning" in line] == warnings


def test_a_pac_that_was_found_is_obeyed_no_direct_fallback(env: dict[str, str], web: peers.WebServer) -> None:
    (web.root / "strict.pac").write_text(pac_text(f"PROXY 127.0.0.1:{peers.free_port()}"))
    (web.root / "strict.pac").chmod(0o644)
    gsettings(env, "org.gnome.system.proxy", "mode", "'auto'")
    gsettings(env, "org.gnome.system.proxy", "autoconfig-url", f"'{web.url('strict.pac')}'")
    with FakeServer(silent) as target:
        r = run_fdpass([*NCFD, "-F", "--proxy-auto", "127.0.0.1", str(target.port)], env=env)
        assert target.settled() == []
    assert r.sock is None and r.returncode == 4, r.stderr
