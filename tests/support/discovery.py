"""What tests/unit/test_discovery.py, tests/cli/test_discovery.py and tests/peers/test_discovery.py share."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from ncfd.route import discovery
from tests.support import peers

PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")
# .ci/run maps these in /etc/hosts: the bare name WPAD asks for first, and a devolved one.
WPAD_HOSTS = {"wpad": "127.80.80.80", "wpad.corp.ncfd.test": "127.80.80.81"}
DOMAIN = "dept.corp.ncfd.test"  # this host's domain, as LOCALDOMAIN says, in these tests


def gsettings(env: dict[str, str], schema: str, key: str, value: str) -> None:
    peers.require("gsettings")
    subprocess.run(["gsettings", "set", schema, key, value], env=env, check=True, capture_output=True)


def pac_text(answer: str) -> str:
    return f'function FindProxyForURL(url, host) {{ return "{answer}"; }}'


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


def probed(stderr: str) -> list[str]:
    """The WPAD URLs that -v says were asked, in order."""
    import re

    return re.findall(r"^ncfd: --proxy-auto: WPAD (?:found )?(http://\S+/wpad\.dat)", stderr, re.M)


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
