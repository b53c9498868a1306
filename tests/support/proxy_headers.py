"""What tests/unit/test_proxy_headers.py, tests/cli/test_proxy_headers.py
and tests/peers/test_proxy_headers.py share."""

from __future__ import annotations

from pathlib import Path

from tests.support import peers
from tests.support.fakeservers import FakeServer
from tests.support.fdharness import NCFD, Handoff, run_fdpass

TOKEN = "s3cret-t0ken"
AGENT = "CorpBrowser/7.1"


def header_file(tmp_path: Path, text: str, name: str = "proxy-headers", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


def fdpass(*args: str, target: peers.Target | FakeServer, env: dict[str, str] | None = None) -> Handoff:
    return run_fdpass([*NCFD, "-F", *args, "127.0.0.1", str(target.port)], env=env)
