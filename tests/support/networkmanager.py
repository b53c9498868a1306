"""A network of its own for WPAD by DHCP: the real NetworkManager on its own system D-Bus, getting a
lease with option 252 from dnsmasq over a veth pair, and nginx serving the PAC that option names.

All of it runs in network, mount and UTS namespaces of its own (unshare, as root), so that the
host's interfaces, routes, name and files are never touched: NetworkManager sees only the
namespace's devices (a fresh read-only sysfs, so no udev) and manages only ncfdveth0 (its config
says so too), writes only to empty tmpfs mounts over /run, /etc/NetworkManager and
/var/lib/NetworkManager, and leaves DNS and the host name alone. ncfd runs in the namespace's
network (nsenter), nmcli reaching NetworkManager through the private bus's socket. Everything stops
when the test closes the script's stdin, or is killed with its process group; the namespace ends
with its last process.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import peers

SERVER = "10.213.0.1"  # dnsmasq's and nginx's address, on ncfdveth1
DEVICE = "ncfdveth0"  # NetworkManager's, which gets the lease and so the default route
WPAD_URL = f"http://{SERVER}/wpad.dat"
START_TIMEOUT = 30.0
PROGRAMS = ("unshare", "nsenter", "ip", "dbus-daemon", "NetworkManager", "nmcli", "dnsmasq", "nginx")

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={dir}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

NM_CONF = """[main]
no-auto-default=*
plugins=keyfile
dhcp=internal
dns=none
rc-manager=unmanaged
hostname-mode=none
auth-polkit=false
[keyfile]
path={dir}/connections
unmanaged-devices=*,except:interface-name:{device}
[connectivity]
enabled=false
"""

CONNECTION = """[connection]
id=ncfd
type=ethernet
interface-name={device}
[ipv4]
method=auto
[ipv6]
method=ignore
"""

DNSMASQ_CONF = """port=0
interface=ncfdveth1
bind-interfaces
dhcp-range=10.213.0.50,10.213.0.60,255.255.255.0,1h
dhcp-option=3,{server}
dhcp-option=252,"{wpad}"
dhcp-leasefile={dir}/leases
log-dhcp
"""

NGINX_CONF = """daemon off;
user root;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/nginx-access.log;
    client_body_temp_path {dir}/tmp; proxy_temp_path {dir}/tmp; fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp; scgi_temp_path {dir}/tmp;
    server {{ listen {server}:80; root {dir}/www; }}
}}
"""

# Runs in the namespaces; prints "ready" once the lease, its options and the default route are in
# place, then waits for its stdin to end and stops what it started.
SCRIPT = r"""
set -eu
dir=$1
trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT
mount -t sysfs -o ro sysfs /sys
for private in /run /etc/NetworkManager /var/lib/NetworkManager; do mount -t tmpfs tmpfs "$private"; done
ip link set lo up
ip link add ncfdveth0 type veth peer name ncfdveth1
ip addr add 10.213.0.1/24 dev ncfdveth1
ip link set ncfdveth1 up
dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile >"$dir/dbus.log" 2>&1 &
until [ -S "$dir/bus" ]; do sleep 0.05; done
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/bus"
dnsmasq --conf-file="$dir/dnsmasq.conf" --keep-in-foreground >"$dir/dnsmasq.log" 2>&1 &
nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/nginx-error.log" >"$dir/nginx.log" 2>&1 &
NetworkManager --no-daemon --debug --config="$dir/nm.conf" --config-dir="$dir/empty" \
    --system-config-dir="$dir/empty" --intern-config="$dir/nm-intern.conf" --state-file="$dir/nm.state" \
    --pid-file="$dir/nm.pid" >"$dir/nm.log" 2>&1 &
until nmcli -t -f GENERAL.STATE device show ncfdveth0 2>/dev/null | grep -q '^GENERAL.STATE:100 ' \
    && ip -4 route show default dev ncfdveth0 | grep -q .; do sleep 0.1; done
echo ready
read -r _ || true
"""


@dataclass
class Network:
    pid: int  # the script's, in the namespaces
    workdir: Path

    @property
    def www(self) -> Path:
        return self.workdir / "www"

    def env(self, env: dict[str, str]) -> dict[str, str]:
        """env, with nmcli reaching this network's NetworkManager."""
        return {**env, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={self.workdir / 'bus'}"}

    def run(self, argv: list[str], env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
        """argv in this network (its routes, devices and addresses), with env."""
        command = ["nsenter", f"--target={self.pid}", "--net", "--", *argv]
        return subprocess.run(command, capture_output=True, timeout=timeout, env=self.env(env))

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.workdir.glob("*.log"))


@contextlib.contextmanager
def network(wpad: str = WPAD_URL) -> Iterator[Network]:
    """The network, its DHCP server naming wpad in option 252."""
    peers.require(*PROGRAMS)
    if os.geteuid() != 0:
        peers.unavailable("NetworkManager in namespaces of its own needs root")
    with tempfile.TemporaryDirectory(prefix="ncfd-nm-") as tmp:
        workdir = Path(tmp)
        for name in ("www", "empty", "tmp", "connections"):
            (workdir / name).mkdir(mode=0o700)
        values = {"dir": tmp, "device": DEVICE, "server": SERVER, "wpad": wpad}
        for name, text in (("bus.conf", BUS_CONF), ("nm.conf", NM_CONF), ("dnsmasq.conf", DNSMASQ_CONF),
                           ("nginx.conf", NGINX_CONF), ("connections/ncfd.nmconnection", CONNECTION)):  # fmt: skip
            (workdir / name).write_text(text.format(**values))
        (workdir / "connections/ncfd.nmconnection").chmod(0o600)
        with (workdir / "script.log").open("wb") as output:
            proc = subprocess.Popen(
                ["unshare", "--net", "--mount", "--uts", "--propagation", "private", "bash", "-c", SCRIPT, "bash", tmp],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=output, start_new_session=True,
            )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        try:
            ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
            line = proc.stdout.readline() if ready else b""
            net = Network(proc.pid, workdir)
            if line != b"ready\n":
                raise peers.PeerError(f"NetworkManager's network not up within {START_TIMEOUT} s:\n{net.logs()}")
            yield net
        finally:
            proc.stdin.close()  # the script stops what it started
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(peers.STOP_TIMEOUT * 3)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
