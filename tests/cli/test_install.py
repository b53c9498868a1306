"""ncfd as a user installs it: the wheel built from this checkout, installed with plain pip into a
fresh virtualenv (no extras, nothing of the test environment): its man page where man finds it,
its version, and NTLM, NTLM inside Negotiate and Kerberos with the real ssh logging in."""

from __future__ import annotations

import subprocess

from tests.support.install import Installed


def test_version_is_the_packages(installed: Installed) -> None:
    metadata = subprocess.run(
        [str(installed.python), "-c", "import importlib.metadata as m; print(m.version('ncfd'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    r = subprocess.run([str(installed.ncfd), "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == f"ncfd {metadata}"
    assert lines[1].startswith("Python 3.")
    assert "quickjs-ng " in lines[2] and "pyspnego " in lines[2] and "missing" not in lines[2]
    assert lines[3].startswith("Kerberos: the system's GSSAPI, libgssapi")
