"""-h, the man page and the README say the same thing, and the parser accepts what they say."""

from __future__ import annotations

import re
import subprocess

from ncfd.manual import help_text
from tests.support import ROOT
from tests.support.fdharness import run_ncfd


def test_help_is_printed_from_the_same_tables() -> None:
    assert run_ncfd(["-h"]).stdout.decode() == help_text() + "\n"


def test_no_file_holds_a_merge_conflict() -> None:
    """A merge once committed its conflict markers into the README, and no other test noticed."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    marker = re.compile(rb"^(<{7}|>{7}) ", re.MULTILINE)
    conflicted = [name for name in tracked.decode().split("\0") if name and marker.search((ROOT / name).read_bytes())]
    assert conflicted == []
