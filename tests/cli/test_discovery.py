"""--proxy-auto: the environment, GNOME's settings (the real gsettings, keyfile backend), KDE's
kioslaverc, macOS's scutil (its output only: no macOS here), WPAD by DHCP (the real NetworkManager
in a network of its own, tests/networkmanager.py; and nmcli's output, recorded from it), and WPAD
through the real resolver (the names .ci/run maps in /etc/hosts, nginx on port 80 of their
addresses), with the real ssh logging in through what was found, and what nothing found costs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ncfd.deadline import Deadline
from ncfd.route import cache, discovery
from tests.support import peers
from tests.support.discovery import (
    DOMAIN,
    PROXY_VARIABLES,
    default_route_device,
    fake_nmcli,
    pac_text,
    probed,
    require_wpad_names,
)
from tests.support.fdharness import NCFD, run_fdpass, run_ncfd


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A desktop with nothing set: no proxy variables, gsettings on a keyfile of its own, no
    kioslaverc, a cache of its own, and a domain whose wpad names are the tests' own."""
    config = tmp_path / "config"
    config.mkdir()
    base = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    return {**base, "XDG_CONFIG_HOME": str(config), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "GSETTINGS_BACKEND": "keyfile", "LOCALDOMAIN": DOMAIN}  # fmt: skip


# --- each source, by itself -------------------------------------------------------------------------


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


# --- WPAD through the resolver -----------------------------------------------------------------------


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


# --- discovery finds; the route choice fetches -------------------------------------------------------


def in_process(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """env's desktop, for discovery run in this process."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in (*PROXY_VARIABLES, "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "GSETTINGS_BACKEND", "LOCALDOMAIN", "PATH"):
        if name in env:
            monkeypatch.setenv(name, env[name])


def test_a_source_that_names_the_proxy_ends_discovery(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    env["https_proxy"] = "http://proxy.example:3128"
    in_process(env, monkeypatch)
    said: list[str] = []
    [found] = discovery.discover("ssh.example", Deadline(10), said.append, said.append)
    assert isinstance(found, discovery.Proxies) and found.source == "the environment"
    assert [str(hop) for hop in found.hops] == ["HTTP proxy proxy.example:3128"]
    assert said == ["--proxy-auto: using the environment: HTTP proxy proxy.example:3128"]


def test_wpad_candidates_are_found_one_at_a_time(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DHCP's candidate first; only once it has been taken up does discovery read what the cache
    remembers for this network, and give DNS's candidates (none when lately nothing was found),
    the one found lately first."""
    device = default_route_device()
    fake_nmcli(env, tmp_path, device, "http://10.213.0.1/wpad.dat")
    in_process(env, monkeypatch)
    cache.remember_discovery(discovery.network_tag(), None)
    said: list[str] = []
    found = discovery.discover("ssh.example", Deadline(10), said.append, said.append)
    dhcp = next(found)
    assert isinstance(dhcp, discovery.DhcpWpad) and (dhcp.url, dhcp.device) == ("http://10.213.0.1/wpad.dat", device)
    assert said[-1] == f"--proxy-auto: {discovery.DHCP_WPAD} on {device} names the PAC http://10.213.0.1/wpad.dat"
    assert next(found, None) is None
    assert said[-1] == "--proxy-auto: WPAD found nothing on this network lately (remembered); not probing again"
    known = "http://wpad.corp.ncfd.test/wpad.dat"
    cache.remember_discovery(discovery.network_tag(), known)
    [_, dns] = discovery.discover("ssh.example", Deadline(10), said.append, said.append)
    assert isinstance(dns, discovery.DnsWpad)
    assert (dns.urls[0], sorted(dns.urls), dns.known) == (known, sorted(discovery.wpad_candidates()), known)
    assert dns.network == discovery.network_tag()
