"""Ansible, through its ssh connection plugin, reaching three hosts at once, each through ncfd
with ProxyUseFdpass: an HTTP CONNECT proxy, a PAC file, a SOCKS5 server. All three are the test
sshd; what differs is the way there."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support import peers
from tests.support.fdharness import ncfd_command
from tests.support.peers import require


def test_ansible_pings_three_hosts_through_connect_pac_and_socks5(
    sshd: peers.Sshd, tinyproxy: peers.Proxy, squid: peers.Proxy, dante: peers.Proxy, tmp_path: Path
) -> None:
    require("ansible")
    pac = tmp_path / "proxy.pac"
    pac.write_text(f'function FindProxyForURL(url, host) {{ return "PROXY {squid.address}"; }}\n')
    ways = {
        "via-connect": f"-X connect -x {tinyproxy.address}",
        "via-pac": f"--proxy-pac {pac}",
        "via-socks5": f"-X 5 -x {dante.address}",
    }
    ssh_options = [
        "-F /dev/null",
        "-o IdentitiesOnly=yes",
        f"-o UserKnownHostsFile={sshd.known_hosts}",
        "-o StrictHostKeyChecking=yes",
        "-o ProxyUseFdpass=yes",
    ]
    hosts = {
        name: {
            "ansible_host": peers.HOST,
            "ansible_port": sshd.port,
            "ansible_user": sshd.user,
            "ansible_ssh_private_key_file": str(sshd.client_key),
            "ansible_python_interpreter": sys.executable,
            "ansible_ssh_common_args": " ".join(
                [*ssh_options, shlex.quote(f"-oProxyCommand={ncfd_command()} -F -v {way} %h %p")]
            ),
        }
        for name, way in ways.items()
    }
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "local-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "remote-tmp"),
        # No ControlMaster: every ssh the plugin runs dials through ncfd, and no master lingers.
        "ANSIBLE_SSH_ARGS": "",
        "ANSIBLE_NOCOLOR": "1",
    }
    # -vvv: ansible shows each ssh's stderr, where ncfd -v says how it got there.
    r = subprocess.run(
        ["ansible", "all", "-i", str(inventory), "-m", "ping", "-vvv"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, f"{r.stdout[-6000:]}\n{r.stderr}"
    for name in ways:
        assert f"{name} | SUCCESS => {{" in r.stdout
    assert "ControlMaster" not in r.stdout
    assert f'= "PROXY {squid.address}"' in r.stdout
    for proxy in (tinyproxy, squid, dante):
        assert f" proxy {proxy.address} opened the tunnel to {peers.HOST}:{sshd.port}" in r.stdout
    assert "ncfd: passed the connected socket to stdout" in r.stdout
