"""--proxy-auto: the environment, GNOME's settings (the real gsettings, keyfile backend), KDE's
kioslaverc, macOS's scutil (its output only: no macOS here), WPAD by DHCP (the real NetworkManager
in a network of its own, tests/networkmanager.py; and nmcli's output, recorded from it), and WPAD
through the real resolver (the names .ci/run maps in /etc/hosts, nginx on port 80 of their
addresses), with the real ssh logging in through what was found, and what nothing found costs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ncfd.route import cache, discovery
from tests.support import networkmanager, peers
from tests.support.discovery import (
    DOMAIN,
    PROXY_VARIABLES,
    WPAD_HOSTS,
    default_route_device,
    fake_nmcli,
    gsettings,
    pac_text,
    probed,
    require_wpad_names,
)
from tests.support.fakeservers import FakeServer, silent
from tests.support.fdharness import NCFD, ncfd_command, run_fdpass, run_ncfd


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


def test_a_pac_that_was_found_is_obeyed_no_direct_fallback(env: dict[str, str], web: peers.WebServer) -> None:
    (web.root / "strict.pac").write_text(pac_text(f"PROXY 127.0.0.1:{peers.free_port()}"))
    (web.root / "strict.pac").chmod(0o644)
    gsettings(env, "org.gnome.system.proxy", "mode", "'auto'")
    gsettings(env, "org.gnome.system.proxy", "autoconfig-url", f"'{web.url('strict.pac')}'")
    with FakeServer(silent) as target:
        r = run_fdpass([*NCFD, "-F", "--proxy-auto", "127.0.0.1", str(target.port)], env=env)
        assert target.settled() == []
    assert r.sock is None and r.returncode == 4, r.stderr
