"""ncfd as a user installs it: the wheel built from this checkout, installed with plain pip into a
fresh virtualenv (no extras, nothing of the test environment): its man page where man finds it,
its version, and NTLM, NTLM inside Negotiate and Kerberos with the real ssh logging in."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT, peers
from tests.support.install import Installed


def ssh(sshd: peers.Sshd, command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = sshd.ssh_argv(command, "echo", "in")
    return subprocess.run(["setsid", *argv], capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("NCFD_PROXY_PASSWORD", "SSH_ASKPASS", "KRB5CCNAME", "KRB5_CONFIG", "PYTHONPATH", "VIRTUAL_ENV")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def test_a_plain_install_answers_squids_ntlm(
    installed: Installed, sshd: peers.Sshd, squid_auth: peers.ProxyFactory
) -> None:
    proxy = squid_auth("alice", "s3cret", schemes=("ntlm",))
    command = f"{installed.ncfd} -F -P 'CORP\\alice' -X connect -x {proxy.address} %h %p"
    r = ssh(sshd, command, clean_env(NCFD_PROXY_PASSWORD="s3cret"))
    assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr


def test_a_plain_install_answers_ntlm_inside_negotiate(
    installed: Installed, sshd: peers.Sshd, squid_negotiate_ntlm: peers.Proxy, tmp_path: Path
) -> None:
    command = f"{installed.ncfd} -F -P 'CORP\\alice' -X connect -x {peers.PROXY_NAME}:{squid_negotiate_ntlm.port} %h %p"
    no_ticket = {"KRB5CCNAME": f"FILE:{tmp_path / 'none'}"}
    r = ssh(sshd, command, clean_env(NCFD_PROXY_PASSWORD="s3cret", **no_ticket))
    assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr


def test_a_plain_install_does_kerberos_with_the_systems_gssapi(
    installed: Installed, sshd: peers.Sshd, kdc: peers.Kdc, squid_kerberos: peers.Proxy, tmp_path: Path
) -> None:
    env = clean_env(**kdc.env(ccache=tmp_path / "ccache"))
    kdc.kinit(env)
    command = f"{installed.ncfd} -F -X connect -x {peers.PROXY_NAME}:{squid_kerberos.port} %h %p"
    r = ssh(sshd, command, env)
    assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr
    assert "gssapi" not in subprocess.run([str(installed.python), "-m", "pip", "list"], capture_output=True,
                                          text=True).stdout.lower()  # fmt: skip


@pytest.mark.parametrize("program", ["ncfd", "ncfd-fdrecv"])
def test_the_wheel_installs_the_man_page_where_man_finds_it(installed: Installed, program: str) -> None:
    page = installed.venv / "share" / "man" / "man1" / f"{program}.1"
    assert page.read_text() == (ROOT / f"{program}.1").read_text()
    peers.require("man")
    env = {k: v for k, v in os.environ.items() if k != "MANPATH"}
    env["PATH"] = f"{installed.venv / 'bin'}:/usr/bin:/bin"
    r = subprocess.run(["man", "-w", program], capture_output=True, text=True, env=env)
    assert r.stdout.strip() == str(page), r.stderr
