"""The PAC helpers are JavaScript in a file of their own, read and checked as such."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ncfd.route import pac_engine
from tests.support import peers

HELPERS = Path(pac_engine.HELPERS_FILE)


def test_the_pac_helpers_are_javascript_that_node_accepts() -> None:
    peers.require("node")
    checked = subprocess.run(["node", "--check", str(HELPERS)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_the_pac_helpers_are_strict_and_define_the_standard_functions() -> None:
    text = HELPERS.read_text()
    # "use strict" binds only as the first statement: comments may come before it, nothing else.
    code = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("//")]
    assert code[0] == '"use strict";'
    for name in ("isPlainHostName", "dnsDomainIs", "localHostOrDomainIs", "isResolvable", "isInNet", "dnsResolve",
                 "myIpAddress", "dnsDomainLevels", "shExpMatch", "weekdayRange", "dateRange", "timeRange"):  # fmt: skip
        assert f"function {name}(" in text
